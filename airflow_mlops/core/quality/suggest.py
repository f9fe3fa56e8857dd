"""A starter suite suggested from a reference dataset: edit it, commit it, gate with it."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.quality.suite import write_suite

if TYPE_CHECKING:
    import pandas as pd

_NUMERIC_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64",
]  # fmt: skip
_STRING_TYPES = ["str", "string", "object"]
_BOOL_TYPES = ["bool", "boolean"]


def suggest_suite(
    df: pd.DataFrame,
    *,
    name: str = "suggested",
    reference: str | None = None,
    max_categories: int = 20,
    range_margin: float = 0.1,
    mostly: float = 0.99,
) -> dict[str, Any]:
    """A starter suite (GX 1.x JSON layout) describing ``df``: edit it, then use it as a gate.

    - schema: every column exists (critical), no unknown columns (warning), dtype family (critical);
    - row count at least 1 (critical);
    - nulls: columns without nulls must stay without (critical); columns with nulls keep roughly
      their null rate (warning);
    - numeric ranges: the reference range widened by ``range_margin`` of its span, for ``mostly``
      of the rows (critical);
    - categories: low-cardinality text/categorical/bool columns keep their values (warning).

    :param df: the reference data.
    :param name: suite name.
    :param reference: where the data came from, recorded in the suite's ``meta``.
    :param max_categories: text columns with at most this many distinct values get a value set.
    :param range_margin: widen numeric ranges by this fraction of the observed span on each side.
    :param mostly: share of rows that must satisfy range and category expectations.
    """
    import pandas as pd
    from pandas.api import types as ptypes

    if len(df) == 0:
        raise ValueError(
            f"cannot suggest a suite from an empty dataset{f' ({reference})' if reference else ''}"
        )
    columns = [str(c) for c in df.columns]
    exps: list[dict[str, Any]] = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}, "severity": "critical"},
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": columns, "exact_match": True},
            "severity": "warning",
        },
    ]
    for col in df.columns:
        s = df[col]
        c = str(col)
        exps.append({"type": "expect_column_to_exist", "kwargs": {"column": c}, "severity": "critical"})
        if isinstance(s.dtype, pd.CategoricalDtype):
            # GX compares a categorical dtype with its categories against a bare CategoricalDtype,
            # which never matches: the value set below checks these columns instead.
            family = None
        elif ptypes.is_bool_dtype(s):
            family = _BOOL_TYPES
        elif ptypes.is_numeric_dtype(s):
            family = _NUMERIC_TYPES
        elif ptypes.is_datetime64_any_dtype(s):
            family = [str(s.dtype)]
        else:
            family = _STRING_TYPES
        if family:
            exps.append(
                {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": c, "type_list": family},
                 "severity": "critical"}
            )  # fmt: skip
        null_rate = float(s.isna().mean())
        if null_rate == 0:
            exps.append(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": c},
                    "severity": "critical",
                }
            )
        else:
            allowed = min(1.0, null_rate * 2 + 0.01)
            exps.append(
                {"type": "expect_column_values_to_not_be_null",
                 "kwargs": {"column": c, "mostly": round(max(0.0, 1 - allowed), 4)},
                 "severity": "warning", "meta": {"reference_null_rate": round(null_rate, 6)}}
            )  # fmt: skip
        non_null = s.dropna()
        if non_null.empty:
            continue
        if ptypes.is_numeric_dtype(s) and not ptypes.is_bool_dtype(s):
            lo, hi = float(non_null.min()), float(non_null.max())
            exps.append(
                range_expectation(
                    c, lo, hi, integer=ptypes.is_integer_dtype(s), range_margin=range_margin, mostly=mostly
                )
            )
        elif not ptypes.is_datetime64_any_dtype(s):
            values = non_null.unique()
            if len(values) <= max_categories:
                value_set = sorted((_native(v) for v in values), key=lambda v: (str(type(v)), v))
                exps.append(
                    {"type": "expect_column_values_to_be_in_set",
                     "kwargs": {"column": c, "value_set": value_set, "mostly": mostly},
                     "severity": "warning"}
                )  # fmt: skip
    meta = {"generated_by": "airflow_mlops.core.quality.suggest_suite", "rows": int(len(df))}
    if reference:
        meta["reference"] = reference
    return {"name": name, "meta": meta, "expectations": exps}


def range_expectation(
    column: str, lo: float, hi: float, *, integer: bool, range_margin: float, mostly: float
) -> dict[str, Any]:
    """The reference range ``[lo, hi]`` widened by ``range_margin`` of its span, for ``mostly`` of
    the rows (critical); integer bounds for integer columns, else rounded outward."""
    margin = (hi - lo) * range_margin
    lo_b, hi_b = lo - margin, hi + margin
    if integer:
        lo_b, hi_b = math.floor(lo_b), math.ceil(hi_b)
    else:
        lo_b, hi_b = _round_sig(lo_b, floor=True), _round_sig(hi_b, floor=False)
    return {"type": "expect_column_values_to_be_between",
            "kwargs": {"column": column, "min_value": lo_b, "max_value": hi_b, "mostly": mostly},
            "severity": "critical", "meta": {"reference_min": lo, "reference_max": hi}}  # fmt: skip


def _native(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _round_sig(value: float, floor: bool, digits: int = 4) -> float:
    """Round outward to ``digits`` significant digits, so bounds read well and never shrink."""
    if value == 0 or not math.isfinite(value):
        return value
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(value))))
    return (math.floor(value * scale) if floor else math.ceil(value * scale)) / scale


def generate_suite(
    df_or_uri: pd.DataFrame | str | os.PathLike, path: str | os.PathLike | None = None, **options: Any
) -> dict[str, Any]:
    """Suggest a suite from a DataFrame or a data URI (parquet/CSV), optionally writing it to ``path``.

    ``options`` go to :func:`suggest_suite`.
    """
    reference = None
    if isinstance(df_or_uri, (str, os.PathLike)):
        from airflow_mlops.core.data import read_table

        reference = os.fspath(df_or_uri)
        df = read_table(reference)
    else:
        df = df_or_uri
    if "name" not in options and path is not None:
        options["name"] = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    suite = suggest_suite(df, reference=reference, **options)
    if path is not None:
        write_suite(suite, path)
    return suite
