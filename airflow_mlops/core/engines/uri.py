"""Data URIs: a file or folder (read on the worker, by pandas or DuckDB), or a table or query
that an engine reaches through an Airflow connection.

================================================  ================================================
form                                              means
================================================  ================================================
``/data/x.parquet``, ``file://...``, ``s3://...``  a parquet/CSV file or folder (``gs://``,
                                                  ``abfs://`` too); ``engine=`` picks pandas or
                                                  DuckDB on the worker
``sql://<conn_id>/<table>``                       a table through any ``common.sql`` connection
                                                  (Postgres, Snowflake, BigQuery, Databricks SQL,
                                                  ...): ``schema.table`` and
                                                  ``catalog.schema.table`` work
``sql://<conn_id>?query=<SELECT ...>``            a query through that connection (URL-encoded;
                                                  one read-only SELECT)
``spark://<conn_id>/<table>``                     a table in the Spark session of a ``spark`` or
                                                  ``spark_connect`` connection
``spark://<conn_id>?query=<SELECT ...>``          a Spark SQL query
================================================  ================================================

Hosts and credentials live in the Airflow connection, never in the URI: a URI whose authority
holds ``@`` or ``:`` is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

TABLE_SCHEMES = ("sql", "spark")
ENGINE_CHOICES = ("auto", "pandas", "duckdb")
"""``engine=`` for file inputs: ``auto`` (DuckDB for large parquet data when it is installed,
else pandas), ``pandas`` (in memory, as Evidently), ``duckdb`` (out of core on the worker)."""

_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class DataRef:
    """A parsed data URI: ``kind`` is ``file``, ``sql`` or ``spark``."""

    uri: str
    kind: str
    conn_id: str | None = None
    table: str | None = None
    query: str | None = None

    @property
    def is_table(self) -> bool:
        return self.kind in TABLE_SCHEMES


def is_table_uri(uri: str) -> bool:
    return str(uri).split("://", 1)[0].lower() in TABLE_SCHEMES and "://" in str(uri)


def parse_data_uri(uri: str, setting: str = "data") -> DataRef:
    """Parse a data URI (see the module docstring).

    :param setting: the argument it comes from, for messages.
    :raises ValueError: a table URI without a connection id or without a table or query, with
        both, with a host or credentials, or with unknown parameters.
    """
    text = str(uri).strip()
    if not is_table_uri(text):
        if not text:
            raise ValueError(f"{setting} is empty: give a path, an object-storage URI or a table URI")
        return DataRef(uri=text, kind="file")
    scheme = text.split("://", 1)[0].lower()
    parts = urlsplit(text)
    form = f"{scheme}://<conn_id>/<table> or {scheme}://<conn_id>?query=<SELECT ...>"
    conn_id = parts.netloc
    if not conn_id:
        raise ValueError(f"{setting} {text!r}: no connection id ({form})")
    if not _CONN_ID.match(conn_id):
        raise ValueError(
            f"{setting} {text!r}: {conn_id!r} is not a connection id: hosts and credentials belong in "
            f"the Airflow connection ({form})"
        )
    params = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(params) - {"query"})
    if unknown:
        raise ValueError(f"{setting} {text!r}: unknown parameters {unknown} (only 'query')")
    query = params.get("query", [None])[-1]
    table = unquote(parts.path.strip("/")) or None
    if query is not None and not query.strip():
        raise ValueError(f"{setting} {text!r}: the query is empty")
    if table and query:
        raise ValueError(f"{setting} {text!r}: give a table or a query, not both")
    if not table and not query:
        raise ValueError(f"{setting} {text!r}: no table or query ({form})")
    return DataRef(uri=text, kind=scheme, conn_id=conn_id, table=table, query=query)


def check_engine(engine: str, setting: str = "engine") -> str:
    """``engine`` as one of :data:`ENGINE_CHOICES` (case and spaces ignored).

    :raises ValueError: naming the setting and the choices.
    """
    value = str(engine).strip().lower()
    if value not in ENGINE_CHOICES:
        raise ValueError(f"{setting} must be one of {', '.join(ENGINE_CHOICES)}, got {engine!r}")
    return value
