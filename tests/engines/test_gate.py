"""The same gate case on a file (pandas), DuckDB, Postgres and Spark local; the suite suggested
from a table."""

from __future__ import annotations

import pytest

from airflow_mlops.core.quality import compile_suite, load_suite, validate_frame, validate_source
from airflow_mlops.io import engine_session, load_table, open_data, parse_data

pytestmark = pytest.mark.integration

SUITE = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "country"}, "severity": "warning"},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "amount", "min_value": 0, "max_value": 100},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "country", "value_set": ["DE", "FR", "NL"]},
        "severity": "warning",
    },  # fmt: skip
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {
        "type": "expect_column_max_to_be_between",
        "kwargs": {"column": "amount", "max_value": 100},
        "severity": "info",
    },
]


def gate(uri: str, engine: str, fail_on: str = "critical"):
    compiled = compile_suite(load_suite(SUITE))
    if engine == "pandas":
        return validate_frame(load_table(uri), compiled, fail_on=fail_on, data=uri)[0]
    with engine_session() as session:
        table = open_data(session, parse_data(uri), engine, what="data")
        return validate_source(table.gx_source(), table.columns(), table.row_count(), compiled, fail_on=fail_on,
                               data=uri)[0]  # fmt: skip


def _unexpected(observed):
    return observed.get("unexpected_count") if isinstance(observed, dict) else observed


def outcome(summary: dict) -> tuple:
    failed = sorted((f["expectation"], f["column"], f["severity"], f["blocking"]) for f in summary["failed"])
    counts = sorted((f["expectation"], _unexpected(f["observed"])) for f in summary["failed"])
    return summary["success"], summary["evaluated"], summary["statistics"]["row_count"], failed, counts


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_same_verdict_failures_and_counts_as_pandas(engine, engine_data, request):
    for name in ("gate_good", "gate_bad"):
        expected = gate(engine_data.file(name), "pandas")
        if engine == "duckdb":
            got = gate(engine_data.file(name), "duckdb")
        else:
            conn = request.getfixturevalue("pg" if engine == "postgres" else "spark")
            scheme = "sql" if engine == "postgres" else "spark"
            got = gate(f"{scheme}://{conn}/{name}", scheme)
        assert outcome(got) == outcome(expected), name
    assert outcome(expected)[0] is False  # the bad table fails the gate: amount out of range
    assert [f["message"] for f in got["failed"] if f["blocking"]] == [
        f["message"] for f in expected["failed"] if f["blocking"]
    ]


def test_suggested_suite_from_a_table_passes_on_it(pg):
    from airflow_mlops.engines.suggest import suggest_table_suite

    suite = suggest_table_suite(f"sql://{pg}/gate_good", name="from_pg")
    types = {e["type"] for e in suite["expectations"]}
    assert {"expect_column_values_to_be_between", "expect_column_values_to_be_in_set"} <= types
    assert suite["meta"]["reference"] == f"sql://{pg}/gate_good"
    compiled = compile_suite(load_suite(suite))
    with engine_session() as session:
        table = open_data(session, parse_data(f"sql://{pg}/gate_good"), "sql", what="data")
        summary, _ = validate_source(table.gx_source(), table.columns(), table.row_count(), compiled,
                                     fail_on="any", data=table.ref.uri)  # fmt: skip
        bad = open_data(session, parse_data(f"sql://{pg}/gate_bad"), "sql", what="data")
        failing, _ = validate_source(bad.gx_source(), bad.columns(), bad.row_count(), compiled,
                                     fail_on="critical", data=bad.ref.uri)  # fmt: skip
    assert summary["success"] is True and summary["failed"] == []
    assert failing["success"] is False
