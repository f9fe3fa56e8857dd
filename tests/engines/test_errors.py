"""Bad inputs on engines are errors that name the thing, raised before any verdict: a missing
table, a missing column, a query that fails, an unreachable connection, a malformed URI."""

from __future__ import annotations

import json
import os

import pytest

from airflow_mlops.exceptions import DataInputError, MlopsError
from airflow_mlops.io import engine_session, open_data, parse_data
from tests.helpers.fixtures import free_port

pytestmark = pytest.mark.integration


def open_one(uri: str, engine: str):
    with engine_session() as session:
        return open_data(session, parse_data(uri, what="current data"), engine, what="current data")


def test_missing_table_is_named(pg):
    with pytest.raises(
        DataInputError,
        match=r"current data sql://mlops_engines_pg/no_such_table: sql failed: .*no_such_table",
    ):
        open_one(f"sql://{pg}/no_such_table", "sql")


def test_failing_query_is_named(pg):
    uri = f"sql://{pg}?query=SELECT%20nope%20FROM%20current"
    with pytest.raises(DataInputError, match=r"current data sql://.*query=SELECT%20nope.*nope"):
        open_one(uri, "sql")


def test_a_query_that_writes_is_refused_before_it_runs(pg):
    with pytest.raises(DataInputError, match="read-only SELECT"):
        open_one(f"sql://{pg}?query=DELETE%20FROM%20current", "sql")


def test_spark_missing_table_is_named(spark):
    with pytest.raises(DataInputError, match=r"spark://mlops_engines_spark/no_such_view: spark failed"):
        open_one(f"spark://{spark}/no_such_view", "spark")


def test_unreachable_connection_is_named_and_retryable(monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_DOWN", json.dumps(
        {"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "postgres", "schema": "postgres"}))  # fmt: skip
    with pytest.raises(MlopsError, match="cannot connect through Airflow connection 'mlops_down'") as info:
        open_one("sql://mlops_down/current", "sql")
    assert not isinstance(info.value, DataInputError)  # a server that is down may come back


def test_unknown_connection_is_named():
    with pytest.raises(DataInputError, match="no Airflow connection 'mlops_nowhere'"):
        open_one("sql://mlops_nowhere/t", "sql")


def test_missing_file_on_duckdb_is_named(tmp_path):
    with pytest.raises(DataInputError, match=f"data not found: {tmp_path}/none.parquet"):
        open_one(str(tmp_path / "none.parquet"), "duckdb")


def test_missing_column_in_drift_and_gate(pg, engine_data):
    from airflow_mlops.core.drift import DriftInputError
    from airflow_mlops.core.drift.pushdown import compare_on_engine
    from airflow_mlops.core.quality import MissingColumnError, compile_suite, load_suite, validate_source

    with engine_session() as session:
        ref = open_data(session, parse_data(f"sql://{pg}/reference"), "sql", what="reference data")
        cur = open_data(session, parse_data(f"sql://{pg}/current"), "sql", what="current data")
        with pytest.raises(
            DriftInputError, match=r"missing from current sql://mlops_engines_pg/current: \['nope'\]"
        ):
            compare_on_engine((ref, ref.source), (cur, cur.source), columns=["amount", "nope"])
        compiled = compile_suite(
            load_suite([{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}}])
        )
        with pytest.raises(MissingColumnError, match=r"column 'nope'"):
            validate_source(cur.gx_source(), cur.columns(), 1, compiled, fail_on="critical", data=cur.ref.uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sql://user:secret@host/db", "not a connection id"),
        ("sql://conn", "no table or query"),
        ("sql://conn/t?query=SELECT%201", "not both"),
        ("spark:///t", "no connection id"),
        ("sql://conn/t?table=x", "unknown parameters"),
    ],
)
def test_malformed_table_uris_are_refused(uri, message):
    with pytest.raises(DataInputError, match=message):
        parse_data(uri, what="current data")


def test_environment_is_left_clean():
    assert not any(k.startswith("AIRFLOW_CONN_MLOPS_DOWN") for k in os.environ)
