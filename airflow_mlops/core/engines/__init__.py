"""Data where it lives: table inputs, the engines' SQL, and the column kinds an engine reports.

Pure logic with no Airflow import. :mod:`.uri` parses the data URIs (files, ``sql://`` and
``spark://`` tables and queries), :mod:`.sql` builds the statements an engine runs (compiled by
sqlglot into each engine's dialect), and :class:`Runner` is what the Airflow side hands to the
pure decisions (:func:`airflow_mlops.core.drift.pushdown.compare_on_engine`, the gate's GX run):
something that runs one statement and returns its rows.
"""

from __future__ import annotations

from airflow_mlops.core.engines.runner import ColumnKind, Runner, column_kind, column_kinds
from airflow_mlops.core.engines.sql import QueryError, Source
from airflow_mlops.core.engines.uri import ENGINE_CHOICES, DataRef, parse_data_uri

__all__ = [
    "ENGINE_CHOICES",
    "ColumnKind",
    "DataRef",
    "QueryError",
    "Runner",
    "Source",
    "column_kind",
    "column_kinds",
    "parse_data_uri",
]
