"""Wording of validation results: what an expectation asks for, and what GX observed, in words.

:func:`describe_result` turns one GX expectation result into the row that the verdict, the task
log, the exception message and the HTML report all show; the helpers below it are its grammar.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlops.core.quality.suite import DEFAULT_SEVERITY

_SAMPLE_SIZE = 5
_MAX_LIST = 20


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def short_list(values: Sequence[Any], limit: int = 10) -> str:
    """``values`` for a message: the first ``limit``, then how many more."""
    values = list(values)
    shown = ", ".join(_fmt(v) for v in values[:limit])
    more = f", ... (+{len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _pct(value: float) -> str:
    if value >= 1:
        return f"{value:.1f}%"
    if value >= 0.01:
        return f"{value:.2f}%"
    return f"{value:.2g}%"


def _range(kw: Mapping[str, Any]) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is not None:
        left = "(" if kw.get("strict_min") else "["
        right = ")" if kw.get("strict_max") else "]"
        return f"{left}{_fmt(lo)}, {_fmt(hi)}{right}"
    if lo is not None:
        return f"{'>' if kw.get('strict_min') else '>='} {_fmt(lo)}"
    if hi is not None:
        return f"{'<' if kw.get('strict_max') else '<='} {_fmt(hi)}"
    return "(no bounds)"


def _outside(kw: Mapping[str, Any]) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is not None and hi is None:
        return f"{'at or below' if kw.get('strict_min') else 'below'} {_fmt(lo)}"
    if hi is not None and lo is None:
        return f"{'at or above' if kw.get('strict_max') else 'above'} {_fmt(hi)}"
    return f"outside {_range(kw)}"


def _within(kw: Mapping[str, Any]) -> str:
    text = _range(kw)
    return f"within {text}" if text.startswith(("[", "(")) else text


def _subject(kw: Mapping[str, Any], type_: str) -> tuple[str, str | list[str] | None]:
    if "column" in kw and not type_.startswith("expect_table"):
        return f"column {kw['column']!r}", kw["column"]
    if "column_A" in kw and "column_B" in kw:
        cols = [kw["column_A"], kw["column_B"]]
        return f"columns {cols[0]!r}, {cols[1]!r}", cols
    if "column_list" in kw and not type_.startswith("expect_table"):
        cols = list(kw["column_list"])
        return "columns " + ", ".join(repr(c) for c in cols), cols
    return "table", None


def _stat_name(type_: str) -> str:
    core = type_.removeprefix("expect_").removeprefix("column_").removeprefix("table_")
    for suffix in ("_to_be_between", "_to_equal", "_to_be_in_set"):
        core = core.removesuffix(suffix)
    return core.replace("_", " ")


def expected_text(type_: str, kw: Mapping[str, Any]) -> str:
    """What the expectation asks for, in words."""
    if type_ == "expect_column_values_to_be_between":
        text = f"values {_within(kw)}"
    elif type_ == "expect_column_values_to_not_be_null":
        text = "no nulls"
    elif type_ == "expect_column_values_to_be_null":
        text = "all nulls"
    elif type_ == "expect_column_values_to_be_in_set":
        text = f"values in {short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_values_to_not_be_in_set":
        text = f"values not in {short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_values_to_be_unique":
        text = "unique values"
    elif type_ == "expect_column_values_to_match_regex":
        text = f"values matching {kw.get('regex')!r}"
    elif type_ == "expect_column_values_to_not_match_regex":
        text = f"values not matching {kw.get('regex')!r}"
    elif type_ == "expect_column_value_lengths_to_be_between":
        text = f"value lengths {_within(kw)}"
    elif type_ == "expect_column_values_to_be_of_type":
        text = f"dtype {kw.get('type_')}"
    elif type_ == "expect_column_values_to_be_in_type_list":
        text = f"dtype in {short_list(kw.get('type_list') or [])}"
    elif type_ == "expect_column_to_exist":
        text = "column exists"
    elif type_ == "expect_table_columns_to_match_set":
        exact = "exactly " if kw.get("exact_match", True) else "at least "
        text = f"columns {exact}{short_list(sorted(map(str, kw.get('column_set') or [])))}"
    elif type_ == "expect_table_columns_to_match_ordered_list":
        text = f"columns in order {short_list(kw.get('column_list') or [])}"
    elif type_ == "expect_column_distinct_values_to_be_in_set":
        text = f"distinct values within {short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_distinct_values_to_contain_set":
        text = f"distinct values include {short_list(kw.get('value_set') or [])}"
    elif type_ == "expect_column_distinct_values_to_equal_set":
        text = f"distinct values equal to {short_list(kw.get('value_set') or [])}"
    elif type_.endswith("_to_be_between"):
        text = f"{_stat_name(type_)} {_within(kw)}"
    elif type_.endswith("_to_equal") and "value" in kw:
        text = f"{_stat_name(type_)} equal to {_fmt(kw['value'])}"
    else:
        shown = {k: v for k, v in kw.items() if k not in ("column", "batch_id")}
        text = f"{type_.removeprefix('expect_').replace('_', ' ')} {json.dumps(shown, default=str)}"
    mostly = kw.get("mostly")
    if mostly is not None and mostly < 1:
        text += f" (for at least {_pct(mostly * 100)} of rows)"
    return text


def _violation(type_: str, kw: Mapping[str, Any]) -> str:
    """What an unexpected value did wrong, for map expectations."""
    return {
        "expect_column_values_to_be_between": _outside(kw),
        "expect_column_values_to_not_be_null": "are null",
        "expect_column_values_to_be_null": "are not null",
        "expect_column_values_to_be_in_set": f"not in {short_list(kw.get('value_set') or [])}",
        "expect_column_values_to_not_be_in_set": f"in the forbidden set {short_list(kw.get('value_set') or [])}",
        "expect_column_values_to_be_unique": "are duplicated",
        "expect_column_values_to_match_regex": f"do not match {kw.get('regex')!r}",
        "expect_column_values_to_not_match_regex": f"match {kw.get('regex')!r}",
        "expect_column_value_lengths_to_be_between": f"have a length {_outside(kw)}",
        "expect_column_values_to_be_of_type": f"are not of type {kw.get('type_')}",
        "expect_column_values_to_be_in_type_list": f"have a type not in {short_list(kw.get('type_list') or [])}",
    }.get(type_, f"violate: {expected_text(type_, kw)}")


def _sample(result: Mapping[str, Any]) -> list[Any]:
    counts = result.get("partial_unexpected_counts")
    if counts:
        values = [c.get("value") for c in counts]
    else:
        values = []
        for v in result.get("partial_unexpected_list") or []:
            if v not in values:
                values.append(v)
    return [v for v in values if v is not None][:_SAMPLE_SIZE]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:_MAX_LIST]}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in list(value)[:_MAX_LIST]]
    return str(value)


def describe_result(item: Mapping[str, Any]) -> dict[str, Any]:
    """One expectation result as ``{expectation, column, severity, success, expected, observed, message}``."""
    config = item.get("expectation_config") or {}
    type_ = config.get("type") or config.get("expectation_type") or "?"
    kw = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    severity = str(config.get("severity") or (config.get("meta") or {}).get("severity") or DEFAULT_SEVERITY)
    result = item.get("result") or {}
    subject, column = _subject(kw, type_)
    expected = expected_text(type_, kw)
    error = _exception_message(item.get("exception_info"))
    observed: Any = None
    if error:
        message = f"{subject}: {type_} could not be evaluated: {error}"
    elif "unexpected_count" in result:
        n = result.get("unexpected_count") or 0
        total = result.get("element_count") or 0
        share = 100.0 * n / total if total else 0.0
        sample = _sample(result)
        observed = {
            "unexpected_count": n,
            "element_count": total,
            "unexpected_percent": round(share, 4),
            "sample": _jsonable(sample),
        }
        message = f"{subject}: {n} of {total} values ({_pct(share)}) {_violation(type_, kw)}"
        if kw.get("mostly") is not None and kw["mostly"] < 1:
            message += f" (at most {_pct(100 * (1 - kw['mostly']))} allowed)"
        if sample:
            message += f"; unexpected sample: {short_list(sample, _SAMPLE_SIZE)}"
    elif type_ == "expect_column_to_exist":
        message = f"column {kw.get('column')!r} " + ("exists" if item.get("success") else "does not exist")
        column = kw.get("column")
    elif "observed_value" in result:
        observed = _jsonable(result["observed_value"])
        message = f"{subject}: {_observed_text(type_, kw, result['observed_value'], result)}"
    else:
        message = f"{subject}: expected {expected}" + (
            "" if item.get("success") else " (no details in result)"
        )
    return {
        "position": item.get("position"),
        "expectation": type_,
        "column": column,
        "severity": severity,
        "success": bool(item.get("success")),
        "expected": expected,
        "observed": observed,
        "message": message,
    }


def _exception_message(info: Any) -> str | None:
    """The error GX caught, from either layout of ``exception_info`` (flat, or keyed by metric)."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "error") if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, Mapping) and (value.get("raised_exception") or value.get("exception_message")):
            return value.get("exception_message") or "error"
    return None


def _observed_text(type_: str, kw: Mapping[str, Any], observed: Any, result: Mapping[str, Any]) -> str:
    if type_ in ("expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"):
        want = list(kw.get("column_set") or kw.get("column_list") or [])
        have = list(observed or [])
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        parts = []
        if missing:
            parts.append(f"missing columns {short_list(missing)}")
        if extra:
            parts.append(f"unexpected columns {short_list(extra)}")
        if not parts:
            parts.append(f"columns {short_list(have)}")
        return "; ".join(parts) + f"; expected {expected_text(type_, kw)}"
    if type_.startswith("expect_column_distinct_values"):
        want = list(kw.get("value_set") or [])
        have = list(observed or [])
        extra = [v for v in have if v not in want]
        missing = [v for v in want if v not in have]
        parts = []
        if extra and type_ != "expect_column_distinct_values_to_contain_set":
            parts.append(f"unexpected distinct values {short_list(extra)}")
        if missing and type_ != "expect_column_distinct_values_to_be_in_set":
            parts.append(f"missing values {short_list(missing)}")
        return (
            "; ".join(parts or [f"distinct values {short_list(have)}"])
            + f"; expected {expected_text(type_, kw)}"
        )
    if type_ in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        return f"dtype is {observed}, expected {expected_text(type_, kw).removeprefix('dtype ')}"
    shown = short_list(observed) if isinstance(observed, (list, tuple)) else _fmt(observed)
    return f"{_stat_name(type_)} is {shown}, expected {expected_text(type_, kw).removeprefix(_stat_name(type_) + ' ')}"
