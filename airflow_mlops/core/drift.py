"""Per-column drift statistics and verdicts that reproduce Evidently 0.7's ``DataDriftPreset``, fast.

Evidently's preset spends most of its time building the report (correlations, histograms,
scatter data, widgets), not on the statistics. The sensor's decision needs only the statistics,
so this module computes them directly with vectorised numpy/scipy, making the same choices the
preset makes:

* **Column type** — inferred from the *current* data as ``evidently.core.datasets.infer_column_type``
  does: float -> numerical; integer -> categorical with at most 10 distinct values, else numerical;
  strings -> text when more than half of the non-null values are distinct, else categorical;
  bool and ``category`` -> categorical. Datetime columns are not tested.
* **Cleaning** — ``±inf`` become null and nulls are dropped, per column and per side.
* **Default test** (``evidently.legacy.calculations.stattests.registry._get_default_stattest``), by
  the number of non-null reference values and the number of distinct values in both sides:

  ===================  ==========================  ===================================
  reference rows       numerical                   categorical
  ===================  ==========================  ===================================
  <= 1000              ``ks`` (``chisquare`` for   ``chisquare`` (``z`` for <= 2
                       3-5 values, ``z`` for <= 2) values)
  > 1000               ``wasserstein`` (normed;    ``jensenshannon``
                       ``jensenshannon`` for <= 5
                       values)
  ===================  ==========================  ===================================

* **Thresholds and verdicts** — p-value tests drift below the threshold (``ks``: at or below),
  distances at or above it; defaults 0.05 for ``ks``/``chisquare``/``z``, 0.1 for distances.
* **Dataset** — drifts when the share of drifted tested columns is at least ``drift_share``.

``ks``, ``chisquare``, ``z``, ``wasserstein``, ``jensenshannon`` and ``psi`` are computed here; any
other Evidently test name (and text columns) is delegated to Evidently's own stat-test function,
which imports Evidently on first use.

Bad input never reads as "no drift": different column sets and empty data raise
:class:`DriftInputError`; a column that cannot be tested (all null, constant on both sides, mixed
types, incompatible types between the sides, unsupported dtype) is reported as skipped with its
reason and left out of the drift share; a run in which no column can be tested raises.

Pure logic: no Airflow import; pandas/numpy/scipy are imported inside functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NUMERICAL = "num"
CATEGORICAL = "cat"
TEXT = "text"

SMALL_SAMPLE_MAX = 1000
"""At or below this many (non-null) reference values Evidently picks p-value tests."""
INTEGER_CARDINALITY_LIMIT = 10
"""Integer columns with at most this many distinct values are categorical (Evidently's rule)."""

# Evidently 0.7's registered stat tests: name -> (column types it accepts, default threshold).
STAT_TESTS: dict[str, tuple[tuple[str, ...], float]] = {
    "anderson": ((NUMERICAL,), 0.1),
    "chisquare": ((CATEGORICAL,), 0.05),
    "cramer_von_mises": ((NUMERICAL,), 0.1),
    "ed": ((NUMERICAL,), 0.1),
    "es": ((NUMERICAL,), 0.05),
    "fisher_exact": ((CATEGORICAL,), 0.1),
    "g_test": ((CATEGORICAL,), 0.1),
    "hellinger": ((CATEGORICAL, NUMERICAL), 0.1),
    "jensenshannon": ((CATEGORICAL, NUMERICAL), 0.1),
    "kl_div": ((CATEGORICAL, NUMERICAL), 0.1),
    "ks": ((NUMERICAL,), 0.05),
    "mannw": ((NUMERICAL,), 0.05),
    "empirical_mmd": ((NUMERICAL,), 0.1),
    "psi": ((CATEGORICAL, NUMERICAL), 0.1),
    "t_test": ((NUMERICAL,), 0.05),
    "perc_text_content_drift": ((TEXT,), 0.95),
    "abs_text_content_drift": ((TEXT,), 0.55),
    "TVD": ((CATEGORICAL,), 0.1),
    "wasserstein": ((NUMERICAL,), 0.1),
    "z": ((CATEGORICAL,), 0.05),
}

FAST_TESTS = frozenset({"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"})
"""Tests computed here; the others run through Evidently's own functions."""

_JS_PSI_BINS = 30  # Evidently's n_bins default; only matters for <= 20-value reference columns


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

    def as_dict(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped, "type": self.type, "drifted": None}
        return {
            "type": self.type,
            "method": self.method,
            "score": _json_float(self.score),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
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
        """Small JSON: DESIGN.md's drift summary (``report_uri`` is added by the sensor)."""
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
        if not isinstance(per_column_method, Mapping):
            raise DriftConfigError(
                f"per_column_method must be a dict {{column: method}}, got {per_column_method!r}"
            )
        for col, name in per_column_method.items():
            _check_method_name(name, f"per_column_method[{col!r}]")
    if threshold is not None:
        _check_threshold(threshold, "threshold")
    if per_column_threshold is not None:
        if not isinstance(per_column_threshold, Mapping):
            raise DriftConfigError(
                f"per_column_threshold must be a dict {{column: threshold}}, got {per_column_threshold!r}"
            )
        for col, value in per_column_threshold.items():
            _check_threshold(value, f"per_column_threshold[{col!r}]")
    if columns is not None:
        if isinstance(columns, str) or not isinstance(columns, Iterable):
            raise DriftConfigError(f"columns must be a list of column names, got {columns!r}")
        if not list(columns):
            raise DriftConfigError("columns is an empty list: name at least one column, or pass None for all")


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


# --------------------------------------------------------------------------------------------
# column types


def _object_kind(series: pd.Series) -> str:
    import pandas as pd

    return pd.api.types.infer_dtype(series, skipna=True)


_NUMERIC_OBJECT_KINDS = ("integer", "floating", "mixed-integer-float", "decimal", "boolean")


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
                return None, f"mixed types ({_type_names(series)}) in current: cast the column to one type"
            if kind != "string":
                return None, f"object column of {kind} values is not supported"
        if counts is None:
            counts = _value_counts(series)
        count = int(counts.sum())
        if count == 0:
            return None, "all values are null in current"
        return (TEXT if len(counts) > count * 0.5 else CATEGORICAL), None
    return None, f"dtype {dtype} is not supported"


def _type_names(series: pd.Series, limit: int = 100_000) -> str:
    head = series.dropna().iloc[:limit]
    return " and ".join(sorted({type(v).__name__ for v in head}))


def _family(series: pd.Series) -> str:
    """Coarse value family, to tell whether the two sides of a column hold comparable values."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _family(pd.Series(dtype.categories))
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


# --------------------------------------------------------------------------------------------
# statistics


def _finite_sorted(series: pd.Series) -> np.ndarray:
    import numpy as np

    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if finite.all():
        return np.sort(values)
    values = values[finite]
    values.sort()
    return values


def _n_unique_sorted(values: np.ndarray) -> int:
    import numpy as np

    return 0 if values.size == 0 else 1 + int(np.count_nonzero(values[1:] != values[:-1]))


def _unique_counts_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if values.size == 0:
        return values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    counts = np.diff(np.append(starts, values.size))
    return values[starts], counts


def _aligned(keys_a: Any, counts_a: np.ndarray, keys_b: Any, counts_b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Counts of both sides over the union of their keys (numeric keys, sorted)."""
    import numpy as np

    keys = np.union1d(keys_a, keys_b)
    a = np.zeros(keys.size, dtype=np.int64)
    b = np.zeros(keys.size, dtype=np.int64)
    a[np.searchsorted(keys, keys_a)] = counts_a
    b[np.searchsorted(keys, keys_b)] = counts_b
    return keys, a, b


@dataclass
class _Side:
    """One side of a column after cleaning, in the forms the tests need."""

    count: int
    sorted_values: np.ndarray | None = None  # numerical: finite values, sorted
    keys: Any = None  # categorical: distinct values
    counts: np.ndarray | None = None

    def n_unique(self) -> int:
        if self.sorted_values is not None:
            return _n_unique_sorted(self.sorted_values)
        return len(self.keys)


def _value_counts(series: pd.Series) -> pd.Series:
    """Occurrences of each non-null value that occurs (unused categories dropped)."""
    counts = series.value_counts(dropna=True, sort=False)
    return counts[counts > 0]


def _is_stringlike(series: pd.Series) -> bool:
    return series.dtype.kind == "O" or series.dtype.name in ("string", "str")


def _categorical_side(series: pd.Series, counts: pd.Series | None = None) -> _Side:
    import pandas as pd

    if counts is None:
        counts = _value_counts(series)
    index = counts.index
    if isinstance(index, pd.CategoricalIndex):
        index = index.astype(object)
    return _Side(count=int(counts.sum()), keys=list(index), counts=counts.to_numpy())


def _categorical_counts(ref: _Side, cur: _Side) -> tuple[list, np.ndarray, np.ndarray]:
    import numpy as np

    position: dict[Any, int] = {}
    for key in ref.keys:
        position.setdefault(key, len(position))
    for key in cur.keys:
        position.setdefault(key, len(position))
    a = np.zeros(len(position), dtype=np.int64)
    b = np.zeros(len(position), dtype=np.int64)
    a[[position[k] for k in ref.keys]] = ref.counts
    b[[position[k] for k in cur.keys]] = cur.counts
    return list(position), a, b


def _counts(ref: _Side, cur: _Side) -> tuple[list, np.ndarray, np.ndarray]:
    """Occurrences of every distinct value (union of both sides) in reference and current."""
    if ref.sorted_values is not None:
        ref_keys, ref_counts = _unique_counts_sorted(ref.sorted_values)
        cur_keys, cur_counts = _unique_counts_sorted(cur.sorted_values)
        keys, a, b = _aligned(ref_keys, ref_counts, cur_keys, cur_counts)
        return keys.tolist(), a, b
    return _categorical_counts(ref, cur)


def _union_n_unique(ref: _Side, cur: _Side, cap: int) -> int:
    """Distinct values over both sides, exact up to ``cap`` (anything above is reported as cap+1)."""
    import numpy as np

    if ref.sorted_values is not None:
        nr, nc = ref.n_unique(), cur.n_unique()
        if nr > cap or nc > cap:
            return cap + 1
        return int(np.union1d(ref.sorted_values, cur.sorted_values).size)
    return len(set(ref.keys) | set(cur.keys))


def _ks(ref: _Side, cur: _Side) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(ref.sorted_values, cur.sorted_values)[1])


def _chisquare(ref: _Side, cur: _Side) -> float:
    from scipy.stats import chisquare

    _, a, b = _counts(ref, cur)
    f_exp = a * (cur.count / ref.count)
    return float(chisquare(b, f_exp)[1])


def _z(ref: _Side, cur: _Side) -> float:
    import numpy as np
    from scipy.stats import norm

    keys, a, b = _counts(ref, cur)
    if ref.n_unique() == 1 and cur.n_unique() == 1 and len(keys) == 1:
        return 1.0
    first = keys.index(min(keys))
    # Evidently maps the smallest value to 0 and everything else to 1, then compares proportions
    n1, n2 = ref.count, cur.count
    p1 = float(n1 - a[first]) / n1
    p2 = float(n2 - b[first]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def _wasserstein(ref: _Side, cur: _Side) -> float:
    """First Wasserstein distance over the reference's population standard deviation (floor 0.001).

    The integral of |F_ref - F_cur| over the merged sorted values, as scipy computes it, with the
    merge done by a stable argsort of two sorted runs (linear) and the CDF differences kept as
    exact integers (held in float64, exact below 2**53): |n_le_ref * m - n_le_cur * n| / (n * m).
    """
    import numpy as np

    u, v = ref.sorted_values, cur.sorted_values
    n, m = u.size, v.size
    total = n + m
    merged = np.concatenate((u, v))
    order = np.argsort(merged, kind="stable")
    merged = merged[order]
    # reference values <= each merged value; within ties only the last counts, and there the
    # count is complete (the gap to the next value is zero inside a tie)
    k = np.cumsum(order[:-1] < n, dtype=np.float64)
    del order
    k *= total  # n_le_ref * (n + m) - i * n == n_le_ref * m - n_le_cur * n
    k -= np.arange(n, total * n, n, dtype=np.float64)
    np.abs(k, out=k)
    distance = float(np.dot(k, np.diff(merged))) / (n * m)
    return distance / max(float(np.std(u)), 0.001)


def _binned(ref: _Side, cur: _Side, column_type: str, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: Sturges histogram for numerical columns with > 20 reference
    values, else the share of each distinct value."""
    import numpy as np

    if column_type == NUMERICAL and ref.n_unique() > 20:
        bins = np.histogram_bin_edges(np.concatenate((ref.sorted_values, cur.sorted_values)), bins="sturges")
        ref_p = np.histogram(ref.sorted_values, bins)[0] / ref.count
        cur_p = np.histogram(cur.sorted_values, bins)[0] / cur.count
    else:
        _, a, b = _counts(ref, cur)
        ref_p = a / ref.count
        cur_p = b / cur.count
    if fill_zeroes:
        for p in (ref_p, cur_p):
            smallest = p[p != 0].min()
            np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return ref_p, cur_p


def _jensenshannon(ref: _Side, cur: _Side, column_type: str) -> float:
    from scipy.spatial import distance

    ref_p, cur_p = _binned(ref, cur, column_type, fill_zeroes=False)
    return float(distance.jensenshannon(ref_p, cur_p))


def _psi(ref: _Side, cur: _Side, column_type: str) -> float:
    import numpy as np

    ref_p, cur_p = _binned(ref, cur, column_type, fill_zeroes=True)
    return float(np.sum((ref_p - cur_p) * np.log(ref_p / cur_p)))


_P_VALUE_TESTS = {"ks": "le", "chisquare": "lt", "z": "lt"}


def _verdict(method: str, score: float, threshold: float) -> bool:
    rule = _P_VALUE_TESTS.get(method)
    if rule == "le":
        return bool(score <= threshold)
    if rule == "lt":
        return bool(score < threshold)
    return bool(score >= threshold)


def default_method(column_type: str, reference_count: int, n_values: int) -> str:
    """The test Evidently's preset picks for a column (see the module docstring)."""
    if column_type == TEXT:
        return "perc_text_content_drift" if reference_count <= SMALL_SAMPLE_MAX else "abs_text_content_drift"
    if reference_count <= SMALL_SAMPLE_MAX:
        if column_type == NUMERICAL and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if column_type == NUMERICAL and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def _clean(series: pd.Series) -> pd.Series:
    import numpy as np

    if series.dtype.kind == "f":
        return series[np.isfinite(series.to_numpy())]
    if series.dtype.kind == "O":
        series = series.replace([-np.inf, np.inf], np.nan)
    return series.dropna()


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
    if method is not None:
        if method not in STAT_TESTS:
            raise DriftConfigError(f"column {column!r}: unknown drift method {method!r}")
        if column_type not in STAT_TESTS[method][0]:
            raise DriftConfigError(
                f"column {column!r} is {_TYPE_NAMES[column_type]}; method {method!r} applies to "
                f"{' and '.join(_TYPE_NAMES[t] for t in STAT_TESTS[method][0])} columns only"
            )

    if column_type == NUMERICAL:
        ref = _Side(count=0, sorted_values=_finite_sorted(reference))
        cur = _Side(count=0, sorted_values=_finite_sorted(current))
        ref.count, cur.count = ref.sorted_values.size, cur.sorted_values.size
    elif column_type == CATEGORICAL:
        ref, cur = _categorical_side(reference), _categorical_side(current, current_counts)
    else:
        ref = _Side(count=int(reference.count()))
        cur = _Side(count=int(current.count()))
    result.reference_count, result.current_count = ref.count, cur.count

    if ref.count == 0:
        result.skipped = "all values are null (or infinite) in reference"
        return result
    if cur.count == 0:
        result.skipped = "all values are null (or infinite) in current"
        return result

    if column_type == TEXT:
        return _delegate(result, reference, current, method, threshold)

    n_values = _union_n_unique(ref, cur, cap=5)
    if n_values == 1:
        value = ref.sorted_values[0] if ref.sorted_values is not None else ref.keys[0]
        result.skipped = f"constant: every value is {value!r} in reference and current"
        return result

    if method is None:
        method = default_method(column_type, ref.count, n_values)
    if method not in FAST_TESTS:
        return _delegate(result, reference, current, method, threshold)

    result.method = method
    result.threshold = float(STAT_TESTS[method][1] if threshold is None else threshold)
    if method == "ks":
        result.score = _ks(ref, cur)
    elif method == "chisquare":
        result.score = _chisquare(ref, cur)
    elif method == "z":
        result.score = _z(ref, cur)
    elif method == "wasserstein":
        result.score = _wasserstein(ref, cur)
    elif method == "jensenshannon":
        result.score = _jensenshannon(ref, cur, column_type)
    else:
        result.score = _psi(ref, cur, column_type)
    result.drifted = _verdict(method, result.score, result.threshold)
    return result


_TYPE_NAMES = {NUMERICAL: "numerical", CATEGORICAL: "categorical", TEXT: "text"}


def _delegate(
    result: ColumnDrift, reference: pd.Series, current: pd.Series, method: str | None, threshold: float | None
) -> ColumnDrift:
    """Run Evidently's own stat-test function (text columns, and tests not computed here)."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType(result.type)
    ref, cur = _clean(reference), _clean(current)
    test = get_stattest(ref, cur, column_type, method)
    outcome = test(ref, cur, column_type, threshold)
    result.method = test.name
    result.score = float(outcome.drift_score)
    result.threshold = float(outcome.actual_threshold)
    result.drifted = bool(outcome.drifted)
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

    if columns is None:
        only_ref = [c for c in reference.columns if c not in set(current.columns)]
        only_cur = [c for c in current.columns if c not in set(reference.columns)]
        if only_ref or only_cur:
            raise DriftInputError(
                "reference and current have different columns: "
                f"only in reference: {only_ref or 'none'}; only in current: {only_cur or 'none'} "
                "(pass columns=[...] to compare the common ones)"
            )
        names = list(current.columns)
    else:
        names = list(dict.fromkeys(columns))
        missing_ref = [c for c in names if c not in reference.columns]
        missing_cur = [c for c in names if c not in current.columns]
        if missing_ref or missing_cur:
            raise DriftInputError(
                f"columns missing from reference: {missing_ref or 'none'}; "
                f"missing from current: {missing_cur or 'none'}"
            )
    unknown = sorted(set(per_column_method) - set(names)) + sorted(set(per_column_threshold) - set(names))
    if unknown:
        raise DriftConfigError(
            f"per-column settings name columns that are not compared: {sorted(set(unknown))}"
        )

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

    result = DriftResult(
        columns=verdicts,
        drift_share_threshold=float(drift_share),
        reference_rows=len(reference),
        current_rows=len(current),
    )
    if not result.tested:
        reasons = "; ".join(f"{c}: {r}" for c, r in result.skipped_columns.items())
        raise DriftInputError(f"no column could be tested for drift ({reasons})")
    return result


def _one_column(
    name: str, reference: pd.Series, current: pd.Series, *, method: str | None, threshold: float | None
) -> ColumnDrift:
    name = str(name)
    counts = _value_counts(current) if _is_stringlike(current) and _family(current) == "string" else None
    column_type, reason = infer_column_type(current, counts)
    if column_type is None:
        return ColumnDrift(column=name, skipped=reason)
    ref_family, cur_family = _family(reference), _family(current)
    if ref_family == "empty" or (reference.dtype.kind == "f" and not reference.notna().any()):
        return ColumnDrift(column=name, type=column_type, skipped="all values are null in reference")
    if ref_family == "mixed":
        return ColumnDrift(
            column=name,
            type=column_type,
            skipped=f"mixed types ({_type_names(reference)}) in reference: cast the column to one type",
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
