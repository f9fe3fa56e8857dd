"""The statements compile for every dialect the engines path supports; those that cannot run here
(BigQuery, Snowflake, Databricks SQL, Trino, Redshift) are checked by parsing them back in their
own dialect and looking at what must be quoted, cast and spelled their way."""

from __future__ import annotations

import pytest
import sqlglot

from airflow_mlops.core.engines import sql
from airflow_mlops.core.engines.uri import parse_data_uri

DIALECTS = ["duckdb", "postgres", "spark", "bigquery", "snowflake", "databricks", "trino", "redshift"]


def statements(dialect: str) -> dict[str, str]:
    ref = sql.table_source("ml.reference", dialect, "ref")
    cur = sql.query_source("SELECT * FROM ml.current WHERE day = '2025-01-01'", dialect, "cur")
    columns = [("amount", "float"), ("select", "int"), ("col with space", "string")]
    return {
        "sample": sql.sample_sql(ref, 1000),
        "profile": sql.profile_sql(cur, columns, ["select", "col with space"]),
        "counts": sql.value_counts_sql(ref, "col with space", "string"),
        "histogram": sql.histogram_sql(ref, "amount", "float", -1.5, 3.25, 8192),
        "edges": sql.edges_counts_sql(cur, "amount", "float", [-1.5, 0.1, 1.7, 3.25]),
        "exact": sql.exact_cdf_sql(ref, cur, "amount", "float"),
        "distinct": sql.count_distinct_sql(ref, "select"),
        "grouped": sql.grouped_counts_sql(cur, [("col with space", "raw"), ("amount", "float")]),
    }


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_statement_parses_back_in_its_dialect(dialect):
    for name, text in statements(dialect).items():
        parsed = sqlglot.parse_one(text, read=dialect)
        assert isinstance(parsed, sqlglot.exp.Query), (name, text)
        quote = "`" if dialect in ("spark", "bigquery", "databricks") else '"'
        if name in ("profile", "counts", "grouped"):
            assert f"{quote}col with space{quote}" in text, (name, text)


def test_dialect_spellings():
    assert "DOUBLE PRECISION" in statements("postgres")["histogram"]
    assert "FLOAT64" in statements("bigquery")["histogram"]
    assert "APPROX_COUNT_DISTINCT" in statements("snowflake")["profile"]
    # Postgres has no approximate distinct count: it counts exactly
    assert "COUNT(DISTINCT" in statements("postgres")["profile"]
    # floats go in as exact strings
    assert "CAST('0.1' AS DOUBLE)" in statements("duckdb")["edges"]


def test_user_queries_must_be_one_read_only_select():
    for bad in ("DROP TABLE t", "SELECT 1; DELETE FROM t", "INSERT INTO t SELECT 1", "SELEC nope"):
        with pytest.raises(sql.QueryError):
            sql.query_source(bad, "postgres")
    # a table name never becomes SQL: it is quoted as one identifier (a table no one has)
    assert sql.table_source("t; DROP TABLE x", "postgres").sql == '"t; DROP TABLE x"'


@pytest.mark.parametrize(
    ("uri", "kind", "conn", "table", "query"),
    [
        ("sql://wh/sales.orders", "sql", "wh", "sales.orders", None),
        ("sql://wh?query=SELECT%20a%20FROM%20t", "sql", "wh", None, "SELECT a FROM t"),
        ("spark://lake/db.t", "spark", "lake", "db.t", None),
        ("s3://bucket/x.parquet", "file", None, None, None),
        ("/data/x.parquet", "file", None, None, None),
    ],
)
def test_data_uris(uri, kind, conn, table, query):
    ref = parse_data_uri(uri)
    assert (ref.kind, ref.conn_id, ref.table, ref.query) == (kind, conn, table, query)
