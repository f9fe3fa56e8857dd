"""The drift verdict: each column's test result, and whether the dataset drifted.

* **Cleaning** -- ``±inf`` become null and nulls are dropped, per column and per side.
* **Column** -- typed from the current data (:mod:`~airflow_mlops.core.drift.columns`), tested
  with the configured or Evidently's default test (:mod:`~airflow_mlops.core.drift.stats`);
  thresholds default to the test's own (0.05 for ``ks``/``chisquare``/``z``, 0.1 for distances).
* **Dataset** -- drifts when the share of drifted tested columns is at least ``drift_share``.

Bad input never reads as "no drift": different column sets and empty data raise
:class:`DriftInputError`; a column that cannot be tested (all null, constant on both sides, mixed
types, incompatible types between the sides, unsupported dtype) is reported as skipped with its
reason and left out of the drift share; a run in which no column can be tested raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.drift.columns import (
    CATEGORICAL,
    NUMERICAL,
    TEXT,
    TYPE_NAMES,
    family,
    infer_column_type,
    is_stringlike,
    type_names,
    value_counts,
)
from airflow_mlops.core.drift.stats import (
    STAT_TESTS,
    Side,
    categorical_side,
    count_side,
    default_method,
    evidently_test,
    numerical_side,
    union_n_unique,
)

if TYPE_CHECKING:
    import pandas as pd


class DriftInputError(ValueError):
    """The two datasets cannot be compared (columns differ, no rows, nothing testable)."""


class DriftConfigError(ValueError):
    """A drift setting is invalid (unknown method, method for the wrong column type, bad threshold)."""


@dataclass
class ColumnDrift:
    """The verdict for one column; ``skipped`` holds the reason when it was not tested."""

    column: str
    type: str | None = None
    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    skipped: str | None = None
    reference_count: int | None = None
    current_count: int | None = None
    error_bound: float | None = None
    """Set when an engine estimated the score from binned statistics: the exact score is within
    ``score ± error_bound`` (the verdict is exact: a threshold inside that range is re-checked
    exactly)."""

    def as_dict(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped, "type": self.type, "drifted": None}
        extra = {} if self.error_bound is None else {"error_bound": _json_float(self.error_bound)}
        return {
            "type": self.type,
            "method": self.method,
            "score": _json_float(self.score),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            **extra,
        }


@dataclass
class DriftResult:
    """Per-column verdicts and the dataset verdict."""

    columns: dict[str, ColumnDrift]
    drift_share_threshold: float
    reference_rows: int
    current_rows: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def tested(self) -> list[ColumnDrift]:
        return [c for c in self.columns.values() if c.skipped is None]

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.tested if c.drifted]

    @property
    def skipped_columns(self) -> dict[str, str]:
        return {c.column: c.skipped for c in self.columns.values() if c.skipped is not None}

    @property
    def share(self) -> float:
        tested = self.tested
        return len(self.drifted_columns) / len(tested) if tested else 0.0

    @property
    def drift_detected(self) -> bool:
        return bool(self.tested) and self.share >= self.drift_share_threshold

    def summary(self) -> dict[str, Any]:
        """Small JSON: the drift summary (the sensor adds ``report_uri``, ``asset_uri`` and its inputs)."""
        return {
            "drift_detected": self.drift_detected,
            "drift_share": self.share,
            "drift_share_threshold": self.drift_share_threshold,
            "number_of_columns": len(self.tested),
            "number_of_drifted_columns": len(self.drifted_columns),
            "drifted_columns": self.drifted_columns,
            "skipped_columns": self.skipped_columns,
            "per_column": {name: c.as_dict() for name, c in self.columns.items()},
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# settings


def validate_settings(
    *,
    drift_share: Any = 0.5,
    method: Any = None,
    per_column_method: Any = None,
    threshold: Any = None,
    per_column_threshold: Any = None,
    columns: Any = None,
) -> None:
    """Check drift settings without touching data; raises :class:`DriftConfigError` naming the setting."""
    if isinstance(drift_share, bool) or not isinstance(drift_share, (int, float)) or not 0 < drift_share <= 1:
        raise DriftConfigError(f"drift_share must be a number in (0, 1], got {drift_share!r}")
    if method is not None:
        _check_method_name(method, "method")
    if per_column_method is not None:
        _check_per_column(per_column_method, "per_column_method", "method", _check_method_name)
    if threshold is not None:
        _check_threshold(threshold, "threshold")
    if per_column_threshold is not None:
        _check_per_column(per_column_threshold, "per_column_threshold", "threshold", _check_threshold)
    if columns is not None:
        if isinstance(columns, str) or not isinstance(columns, Iterable):
            raise DriftConfigError(f"columns must be a list of column names, got {columns!r}")
        if not list(columns):
            raise DriftConfigError("columns is an empty list: name at least one column, or pass None for all")


def _check_per_column(value: Any, setting: str, what: str, check: Callable[[Any, str], None]) -> None:
    if not isinstance(value, Mapping):
        raise DriftConfigError(f"{setting} must be a dict {{column: {what}}}, got {value!r}")
    for column, item in value.items():
        check(item, f"{setting}[{column!r}]")


def _check_method_name(name: Any, setting: str) -> None:
    if not isinstance(name, str) or name not in STAT_TESTS:
        raise DriftConfigError(
            f"{setting}: unknown drift method {name!r}; known: {', '.join(sorted(STAT_TESTS))}"
        )


def _check_threshold(value: Any, setting: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise DriftConfigError(f"{setting} must be a non-negative number, got {value!r}")


def column_drift(
    column: str,
    reference: pd.Series,
    current: pd.Series,
    column_type: str,
    *,
    method: str | None = None,
    threshold: float | None = None,
    current_counts: pd.Series | None = None,
) -> ColumnDrift:
    """Test one column whose type is known; returns a skipped verdict when it cannot be tested.

    :param current_counts: the current column's non-null value counts, when already computed.
    """
    result = ColumnDrift(column=column, type=column_type)
    check_column_method(column, column_type, method)
    ref, cur = _sides(reference, current, column_type, current_counts)
    if not test_sides(result, ref, cur, method=method, threshold=threshold):
        return _delegated(result, reference, current, method, threshold)
    return result


def check_column_method(column: str, column_type: str, method: str | None) -> None:
    """:raises DriftConfigError: ``method`` is unknown or does not apply to the column's type."""
    if method is None:
        return
    if method not in STAT_TESTS:
        raise DriftConfigError(f"column {column!r}: unknown drift method {method!r}")
    accepted = STAT_TESTS[method].column_types
    if column_type not in accepted:
        raise DriftConfigError(
            f"column {column!r} is {TYPE_NAMES[column_type]}; method {method!r} applies to "
            f"{' and '.join(TYPE_NAMES[t] for t in accepted)} columns only"
        )


def test_sides(
    result: ColumnDrift, ref: Side, cur: Side, *, method: str | None, threshold: float | None
) -> bool:
    """Fill ``result`` from the two sides' statistics: counts, then skipped (no values, constant)
    or method, score, threshold and verdict. False when the test is Evidently's own (text
    columns, tests without a kernel here): the caller computes it from the values."""
    result.reference_count, result.current_count = ref.count, cur.count
    if ref.count == 0:
        result.skipped = "all values are null (or infinite) in reference"
        return True
    if cur.count == 0:
        result.skipped = "all values are null (or infinite) in current"
        return True
    if result.type == TEXT:
        return False
    n_values = union_n_unique(ref, cur, cap=5)
    if n_values == 1:
        result.skipped = f"constant: every value is {ref.first_value()!r} in reference and current"
        return True
    if method is None:
        method = default_method(result.type, ref.count, n_values)
    test = STAT_TESTS[method]
    if test.kernel is None:
        return False
    result.method = method
    result.threshold = float(test.threshold if threshold is None else threshold)
    result.score = test.kernel(ref, cur, result.type)
    result.drifted = bool(test.drifts(result.score, result.threshold))
    return True


def _sides(
    reference: pd.Series, current: pd.Series, column_type: str, current_counts: pd.Series | None
) -> tuple[Side, Side]:
    if column_type == NUMERICAL:
        return numerical_side(reference), numerical_side(current)
    if column_type == CATEGORICAL:
        return categorical_side(reference), categorical_side(current, current_counts)
    return count_side(reference), count_side(current)


def _delegated(
    result: ColumnDrift, reference: pd.Series, current: pd.Series, method: str | None, threshold: float | None
) -> ColumnDrift:
    result.method, result.score, result.threshold, result.drifted = evidently_test(
        reference, current, result.type, method, threshold
    )
    return result


# --------------------------------------------------------------------------------------------
# datasets


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Iterable[str] | None = None,
    drift_share: float = 0.5,
    method: str | None = None,
    per_column_method: Mapping[str, str] | None = None,
    threshold: float | None = None,
    per_column_threshold: Mapping[str, float] | None = None,
    on_column: Callable[[ColumnDrift], None] | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` column by column.

    :param columns: the columns to test (default: every column; then both sides must have the
        same columns).
    :param drift_share: the dataset drifts when at least this share of tested columns drifted.
    :param method: one Evidently stat-test name for every column (default: Evidently's choice).
    :param per_column_method: ``{column: method}`` overriding ``method``.
    :param threshold: one threshold for every column (default: the method's).
    :param per_column_threshold: ``{column: threshold}`` overriding ``threshold``.
    :param on_column: called with each column's verdict as soon as it is known (for logging).
    :raises DriftInputError: different columns, no rows, or no column could be tested.
    :raises DriftConfigError: invalid settings, or a method that does not fit a column's type.
    """
    validate_settings(
        drift_share=drift_share,
        method=method,
        per_column_method=per_column_method,
        threshold=threshold,
        per_column_threshold=per_column_threshold,
        columns=columns,
    )
    per_column_method = dict(per_column_method or {})
    per_column_threshold = dict(per_column_threshold or {})
    if len(current) == 0:
        raise DriftInputError("current data has no rows: nothing to compare")
    if len(reference) == 0:
        raise DriftInputError("reference data has no rows: nothing to compare with")

    names = column_names(list(reference.columns), list(current.columns), columns)
    check_per_column(names, per_column_method, per_column_threshold)

    verdicts: dict[str, ColumnDrift] = {}
    for name in names:
        verdict = _one_column(
            name,
            reference[name],
            current[name],
            method=per_column_method.get(name, method),
            threshold=per_column_threshold.get(name, threshold),
        )
        verdicts[verdict.column] = verdict
        if on_column is not None:
            on_column(verdict)

    return finish(verdicts, drift_share, len(reference), len(current))


def column_names(
    reference: list, current: list, columns: Iterable[str] | None, labels: tuple[str, str] = ("", "")
) -> list:
    """The columns to compare: ``columns``, or every column when both sides have the same ones.

    :param labels: how to name each side in messages (``" <uri>"``), after "reference"/"current".
    :raises DriftInputError: the sides differ (with ``columns=None``) or lack a named column.
    """
    if columns is None:
        only_ref = [c for c in reference if c not in set(current)]
        only_cur = [c for c in current if c not in set(reference)]
        if only_ref or only_cur:
            raise DriftInputError(
                "reference and current have different columns: "
                f"only in reference: {only_ref or 'none'}; only in current: {only_cur or 'none'} "
                "(pass columns=[...] to compare the common ones)"
            )
        return list(current)
    names = list(dict.fromkeys(columns))
    missing_ref = [c for c in names if c not in reference]
    missing_cur = [c for c in names if c not in current]
    if missing_ref or missing_cur:
        raise DriftInputError(
            f"columns missing from reference{labels[0]}: {missing_ref or 'none'}; "
            f"missing from current{labels[1]}: {missing_cur or 'none'}"
        )
    return names


def check_per_column(names: list, per_column_method: Mapping, per_column_threshold: Mapping) -> None:
    """:raises DriftConfigError: per-column settings name columns that are not compared."""
    unknown = sorted(set(per_column_method) - set(names)) + sorted(set(per_column_threshold) - set(names))
    if unknown:
        raise DriftConfigError(
            f"per-column settings name columns that are not compared: {sorted(set(unknown))}"
        )


def finish(
    verdicts: dict[str, ColumnDrift], drift_share: float, reference_rows: int, current_rows: int
) -> DriftResult:
    """The dataset verdict from the columns' verdicts.

    :raises DriftInputError: no column could be tested (each reason listed).
    """
    result = DriftResult(
        columns=verdicts,
        drift_share_threshold=float(drift_share),
        reference_rows=reference_rows,
        current_rows=current_rows,
    )
    if not result.tested:
        reasons = "; ".join(f"{c}: {r}" for c, r in result.skipped_columns.items())
        raise DriftInputError(f"no column could be tested for drift ({reasons})")
    return result


def _one_column(
    name: str, reference: pd.Series, current: pd.Series, *, method: str | None, threshold: float | None
) -> ColumnDrift:
    name = str(name)
    counts = value_counts(current) if is_stringlike(current) and family(current) == "string" else None
    column_type, reason = infer_column_type(current, counts)
    if column_type is None:
        return ColumnDrift(column=name, skipped=reason)
    ref_family, cur_family = family(reference), family(current)
    if ref_family == "empty" or (reference.dtype.kind == "f" and not reference.notna().any()):
        return ColumnDrift(column=name, type=column_type, skipped="all values are null in reference")
    if ref_family == "mixed":
        return ColumnDrift(
            column=name,
            type=column_type,
            skipped=f"mixed types ({type_names(reference)}) in reference: cast the column to one type",
        )
    if ref_family != cur_family:
        return ColumnDrift(
            column=name,
            type=column_type,
            skipped=(
                f"incompatible types: reference is {reference.dtype} ({ref_family}), "
                f"current is {current.dtype} ({cur_family})"
            ),
        )
    return column_drift(
        name, reference, current, column_type, method=method, threshold=threshold, current_counts=counts
    )
