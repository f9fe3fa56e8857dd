"""Column typing: which columns are tested for drift, as what, and which cannot be.

The type is inferred from the *current* data as ``evidently.core.datasets.infer_column_type``
does: float -> numerical; integer -> categorical with at most 10 distinct values, else numerical;
strings -> text when more than half of the non-null values are distinct, else categorical;
bool and ``category`` -> categorical. Datetime columns are not tested. Unsigned and nullable
numeric dtypes (which Evidently leaves untested as "unknown") follow the rule of their numpy
counterparts.

pandas is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

NUMERICAL = "num"
CATEGORICAL = "cat"
TEXT = "text"

TYPE_NAMES = {NUMERICAL: "numerical", CATEGORICAL: "categorical", TEXT: "text"}
"""Words for the column types, for messages."""

INTEGER_CARDINALITY_LIMIT = 10
"""Integer columns with at most this many distinct values are categorical (Evidently's rule)."""

_NUMERIC_OBJECT_KINDS = ("integer", "floating", "mixed-integer-float", "decimal", "boolean")


def _object_kind(series: pd.Series) -> str:
    import pandas as pd

    return pd.api.types.infer_dtype(series, skipna=True)


def infer_column_type(series: pd.Series, counts: pd.Series | None = None) -> tuple[str | None, str | None]:
    """``(type, None)`` for a testable column, ``(None, reason)`` otherwise.

    Evidently's rule for the types it tests; unsigned and nullable numeric dtypes (which Evidently
    leaves untested as "unknown") follow the rule of their numpy counterparts.

    :param counts: the column's non-null value counts, when already known (saves a pass).
    """
    import pandas as pd

    dtype = series.dtype
    name = dtype.name.lower()
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return CATEGORICAL, None
    if name.startswith("float"):
        return NUMERICAL, None
    if name.startswith(("int", "uint")):
        return (CATEGORICAL if series.nunique() <= INTEGER_CARDINALITY_LIMIT else NUMERICAL), None
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return None, f"{dtype} column: date/time columns are not tested for drift"
    if name in ("string", "str") or dtype.kind == "O":
        if dtype.kind == "O":
            kind = _object_kind(series)
            if kind == "empty":
                return None, "all values are null in current"
            if kind in _NUMERIC_OBJECT_KINDS:
                return None, f"object column holding {kind} values: cast it to a numeric dtype"
            if kind.startswith("mixed"):
                return None, f"mixed types ({type_names(series)}) in current: cast the column to one type"
            if kind != "string":
                return None, f"object column of {kind} values is not supported"
        if counts is None:
            counts = value_counts(series)
        count = int(counts.sum())
        if count == 0:
            return None, "all values are null in current"
        return (TEXT if len(counts) > count * 0.5 else CATEGORICAL), None
    return None, f"dtype {dtype} is not supported"


def type_names(series: pd.Series, limit: int = 100_000) -> str:
    """The Python types of a column's values (``"int and str"``), for a "mixed types" reason."""
    head = series.dropna().iloc[:limit]
    return " and ".join(sorted({type(v).__name__ for v in head}))


def family(series: pd.Series) -> str:
    """Coarse value family, to tell whether the two sides of a column hold comparable values."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return family(pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if dtype.kind == "O":
        kind = _object_kind(series)
        if kind == "string":
            return "string"
        if kind == "empty":
            return "empty"
        if kind.startswith("mixed") and kind != "mixed-integer-float":
            return "mixed"
        return "numeric" if kind in _NUMERIC_OBJECT_KINDS else kind
    if pd.api.types.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def is_stringlike(series: pd.Series) -> bool:
    return series.dtype.kind == "O" or series.dtype.name in ("string", "str")


def value_counts(series: pd.Series) -> pd.Series:
    """Occurrences of each non-null value that occurs (unused categories dropped)."""
    counts = series.value_counts(dropna=True, sort=False)
    return counts[counts > 0]
