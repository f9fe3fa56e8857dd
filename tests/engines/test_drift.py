"""The same drift case on a file (in memory, as Evidently), DuckDB, Postgres and Spark local."""

from __future__ import annotations

import math

import pytest

from airflow_mlops.core.drift import compare
from airflow_mlops.core.drift.pushdown import compare_on_engine
from airflow_mlops.io import engine_session, load_table, open_data, parse_data

pytestmark = pytest.mark.integration


def in_memory(engine_data):
    return compare(load_table(engine_data.file("reference")), load_table(engine_data.file("current")))


def on_engine(reference: str, current: str, engine: str, **settings):
    with engine_session() as session:
        ref = open_data(session, parse_data(reference), engine, what="reference data")
        cur = open_data(session, parse_data(current), engine, what="current data")
        return compare_on_engine((ref, ref.source), (cur, cur.source), **settings)


def inputs(engine: str, engine_data, request) -> tuple[str, str, str]:
    if engine == "duckdb":
        return engine_data.file("reference"), engine_data.file("current"), "duckdb"
    conn = request.getfixturevalue("pg" if engine == "postgres" else "spark")
    scheme = "sql" if engine == "postgres" else "spark"
    return f"{scheme}://{conn}/reference", f"{scheme}://{conn}/current", scheme


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_same_verdicts_and_scores_as_in_memory(engine, engine_data, request):
    expected = in_memory(engine_data)
    result = on_engine(*inputs(engine, engine_data, request))

    assert result.drift_detected == expected.drift_detected is True
    assert result.drifted_columns == expected.drifted_columns
    assert (result.reference_rows, result.current_rows) == (expected.reference_rows, expected.current_rows)
    for name, want in expected.columns.items():
        got = result.columns[name]
        assert (got.type, got.method, got.drifted, got.skipped) == (
            want.type,
            want.method,
            want.drifted,
            want.skipped,
        ), name
        assert (got.reference_count, got.current_count) == (want.reference_count, want.current_count), name
        assert math.isclose(got.score, want.score, rel_tol=1e-6, abs_tol=1e-9), (name, got.score, want.score)


def test_a_query_input_and_a_column_subset(pg, engine_data):
    query = f"sql://{pg}?query=SELECT%20amount%2C%20colour%20FROM%20current%20WHERE%20rooms%20%3E%3D%201"
    result = on_engine(f"sql://{pg}/reference", query, "sql", columns=["amount", "colour"])
    expected = compare(
        load_table(engine_data.file("reference"))[["amount", "colour"]],
        load_table(engine_data.file("current"))[["amount", "colour"]],
    )
    assert result.drifted_columns == expected.drifted_columns == ["amount", "colour"]


def test_configured_methods_match_in_memory_on_duckdb(engine_data):
    settings = {"per_column_method": {"amount": "psi", "steady": "ks", "price": "jensenshannon"}}
    expected = compare(
        load_table(engine_data.file("reference")), load_table(engine_data.file("current")), **settings
    )
    result = on_engine(engine_data.file("reference"), engine_data.file("current"), "duckdb", **settings)
    for name in ("amount", "steady", "price"):
        assert result.columns[name].method == expected.columns[name].method
        assert math.isclose(result.columns[name].score, expected.columns[name].score, rel_tol=1e-6)


def test_many_distinct_values_are_bounded_and_rechecked_exactly(engine_data, monkeypatch):
    """Few bins make wide bounds: a threshold inside one is recomputed exactly by the engine."""
    import airflow_mlops.core.drift.pushdown as pushdown

    monkeypatch.setattr(pushdown, "DISTINCT_CAP", 100)  # "amount" and "steady" take the binned path
    monkeypatch.setattr(pushdown, "BINS", 8)
    expected = in_memory(engine_data)
    far = {"amount": 10.0, "steady": 10.0}  # thresholds no bound straddles: the bounds are kept
    loose = on_engine(engine_data.file("reference"), engine_data.file("current"), "duckdb",
                      per_column_threshold=far)  # fmt: skip
    for name in ("amount", "steady"):
        got, want = loose.columns[name], expected.columns[name]
        assert got.error_bound is not None and got.error_bound > 0
        assert abs(got.score - want.score) <= got.error_bound * (1 + 1e-9)
        assert got.drifted is False
    # a threshold right at the exact score: the bound cannot decide, the exact re-check does
    threshold = expected.columns["steady"].score * 1.000001
    pinned = on_engine(engine_data.file("reference"), engine_data.file("current"), "duckdb",
                       per_column_threshold={"steady": threshold})  # fmt: skip
    assert pinned.columns["steady"].error_bound is None
    assert math.isclose(pinned.columns["steady"].score, expected.columns["steady"].score, rel_tol=1e-9)
    assert pinned.columns["steady"].drifted is False
