"""What an engine must do for the pure decisions, and the column kinds it reports.

A :class:`Runner` runs one statement and returns the column names and the rows (a handful of
rows: every statement here aggregates). The Airflow side builds one per input from a provider's
hook (:mod:`airflow_mlops.engines`); tests can build one over any DB-API connection.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from typing import Any, Protocol

from airflow_mlops.core.engines.sql import Source, first_value_sql, sample_sql

ColumnKind = str
"""``bool``, ``int``, ``float``, ``decimal``, ``string``, ``datetime``, ``binary``, ``other`` or
``null`` (no non-null value)."""

SAMPLE_ROWS = 1000


class Runner(Protocol):
    dialect: str
    """The sqlglot dialect the engine speaks."""

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run ``sql``; ``(column names, rows)``."""
        ...


def column_kind(value: Any) -> ColumnKind:
    """The kind of one non-null value as the engine's driver returns it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (datetime.date, datetime.time, datetime.timedelta)):
        return "datetime"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "binary"
    kind = type(value).__module__.split(".")[0]
    if kind == "numpy":  # numpy scalars (some drivers)
        return column_kind(value.item())
    return "other"


def column_kinds(
    runner: Runner, source: Source, columns: Sequence[str] | None = None
) -> dict[str, ColumnKind]:
    """Each column's kind, from the values of a small sample (a column with only nulls there is
    asked for one non-null value); the columns in the source's order.

    Drivers return Python values of the column's SQL type (``int`` for integers, ``float`` for
    doubles, ``Decimal`` for numerics, ``str`` for text ...), so the kind does not depend on the
    engine's type names.
    """
    names, rows = runner.query(sample_sql(source, SAMPLE_ROWS))
    kinds: dict[str, ColumnKind] = {}
    for i, name in enumerate(names):
        if columns is not None and name not in columns:
            continue
        found = next((row[i] for row in rows if row[i] is not None), None)
        if found is None and rows:
            _, more = runner.query(first_value_sql(source, name))
            found = more[0][0] if more else None
        kinds[name] = "null" if found is None else column_kind(found)
    return kinds
