"""The statistical tests: per-column sufficient statistics -> score -> verdict.

The seam is :class:`Side`: one side of one column reduced to what the tests read,

* numerical columns: the finite values, sorted (``ks``, ``wasserstein``; value counts and
  Sturges histograms for ``chisquare``/``z``/``jensenshannon``/``psi`` are derived from them);
* categorical columns: each distinct non-null value and its count.

The kernels (``ks_p_value`` ... ``psi_value``) take two sides and return a score; they never see
a DataFrame. The pandas builders (:func:`numerical_side`, :func:`categorical_side`) are the only
code here that reads a column, so an engine that computes the same statistics elsewhere (SQL
``GROUP BY`` counts, an ordered scan) can feed the same kernels.

:data:`STAT_TESTS` lists every stat test Evidently 0.7 registers: the column types it accepts,
its default threshold, and, for the ones computed here, the kernel and the verdict rule
(p-values drift below the threshold, ``ks`` at or below it; distances at or above it). The others
(and text columns) run through Evidently's own function (:func:`evidently_test`), which imports
Evidently on first use.

:func:`default_method` is the test Evidently's ``DataDriftPreset`` picks
(``evidently.legacy.calculations.stattests.registry._get_default_stattest``), by the number of
non-null reference values and the number of distinct values in both sides:

===================  ==========================  ===================================
reference rows       numerical                   categorical
===================  ==========================  ===================================
<= 1000              ``ks`` (``chisquare`` for   ``chisquare`` (``z`` for <= 2
                     3-5 values, ``z`` for <= 2) values)
> 1000               ``wasserstein`` (normed;    ``jensenshannon``
                     ``jensenshannon`` for <= 5
                     values)
===================  ==========================  ===================================

numpy/scipy/pandas are imported inside the functions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_mlops.core.drift.columns import CATEGORICAL, NUMERICAL, TEXT, value_counts

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SMALL_SAMPLE_MAX = 1000
"""At or below this many (non-null) reference values Evidently picks p-value tests."""


# --------------------------------------------------------------------------------------------
# sufficient statistics


@dataclass
class Side:
    """One side of a column after cleaning (``±inf`` and nulls dropped), in the forms the tests need.

    ``count`` is the number of values left; a numerical side holds ``sorted_values``, a
    categorical side ``keys`` (its distinct values) and ``counts`` (their occurrences); a text
    side only its count (text tests are Evidently's and read the column itself).

    Sides computed by an engine (:mod:`airflow_mlops.core.drift.pushdown`) never hold a column:
    a numerical side may hold its *distinct* values in ``sorted_values`` with their occurrences
    in ``weights`` (exact, for columns with few distinct values), or, for a column with many
    distinct values, only ``hist`` (its counts over the Sturges bins both sides share, for
    ``jensenshannon``/``psi``) and ``distinct`` (a lower bound of its distinct values).
    """

    count: int
    sorted_values: np.ndarray | None = None
    keys: Any = None
    counts: np.ndarray | None = None
    weights: np.ndarray | None = None
    hist: np.ndarray | None = None
    distinct: int | None = None

    def n_unique(self) -> int:
        if self.distinct is not None:
            return self.distinct
        if self.sorted_values is not None:
            if self.weights is not None:
                return int(self.sorted_values.size)
            return _n_unique_sorted(self.sorted_values)
        return len(self.keys)

    def first_value(self) -> Any:
        """The smallest value of a numerical side, the first key of a categorical one."""
        return self.sorted_values[0] if self.sorted_values is not None else self.keys[0]


def numerical_side(series: pd.Series) -> Side:
    """The finite values of a column, sorted."""
    import numpy as np

    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if finite.all():
        values = np.sort(values)
    else:
        values = values[finite]
        values.sort()
    return Side(count=int(values.size), sorted_values=values)


def categorical_side(series: pd.Series, counts: pd.Series | None = None) -> Side:
    """The distinct non-null values of a column and their counts.

    :param counts: the column's :func:`~airflow_mlops.core.drift.columns.value_counts`, when
        already computed.
    """
    import pandas as pd

    if counts is None:
        counts = value_counts(series)
    index = counts.index
    if isinstance(index, pd.CategoricalIndex):
        index = index.astype(object)
    return Side(count=int(counts.sum()), keys=list(index), counts=counts.to_numpy())


def count_side(series: pd.Series) -> Side:
    """Only the number of non-null values (text columns)."""
    return Side(count=int(series.count()))


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


def _categorical_counts(ref: Side, cur: Side) -> tuple[list, np.ndarray, np.ndarray]:
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


def _side_unique_counts(side: Side) -> tuple[np.ndarray, np.ndarray]:
    if side.weights is not None:
        return side.sorted_values, side.weights
    return _unique_counts_sorted(side.sorted_values)


def _counts(ref: Side, cur: Side) -> tuple[list, np.ndarray, np.ndarray]:
    """Occurrences of every distinct value (union of both sides) in reference and current."""
    if ref.sorted_values is not None:
        ref_keys, ref_counts = _side_unique_counts(ref)
        cur_keys, cur_counts = _side_unique_counts(cur)
        keys, a, b = _aligned(ref_keys, ref_counts, cur_keys, cur_counts)
        return keys.tolist(), a, b
    return _categorical_counts(ref, cur)


def union_n_unique(ref: Side, cur: Side, cap: int) -> int:
    """Distinct values over both sides, exact up to ``cap`` (anything above is reported as cap+1)."""
    import numpy as np

    if ref.sorted_values is not None:
        nr, nc = ref.n_unique(), cur.n_unique()
        if nr > cap or nc > cap:
            return cap + 1
        return int(np.union1d(ref.sorted_values, cur.sorted_values).size)
    return len(set(ref.keys) | set(cur.keys))


# --------------------------------------------------------------------------------------------
# kernels: (reference side, current side, column type) -> score


KS_EXACT_MAX = 10_000
"""scipy's ``ks_2samp`` computes an exact p-value when neither side has more values than this,
else the asymptotic one (``method="auto"``)."""


def ks_p_value(ref: Side, cur: Side, column_type: str) -> float:
    from scipy.stats import ks_2samp

    if ref.weights is None and cur.weights is None:
        return float(ks_2samp(ref.sorted_values, cur.sorted_values)[1])
    import numpy as np

    if max(ref.count, cur.count) <= KS_EXACT_MAX:  # small: the values themselves, as scipy sees them
        ref_values, cur_values = (np.repeat(*_side_unique_counts(s)) for s in (ref, cur))
        return float(ks_2samp(ref_values, cur_values)[1])
    _, a, b = _counts(ref, cur)
    return ks_asymptotic_p_value(float(np.max(np.abs(np.cumsum(a) / ref.count - np.cumsum(b) / cur.count))),
                                 ref.count, cur.count)  # fmt: skip


def ks_asymptotic_p_value(d: float, n: int, m: int) -> float:
    """scipy ``ks_2samp``'s two-sided p-value for the statistic ``d`` when a side has more than
    :data:`KS_EXACT_MAX` values (Smirnov's asymptotic distribution)."""
    import numpy as np
    from scipy.stats import kstwo

    big, small = sorted([float(n), float(m)], reverse=True)
    return float(np.clip(kstwo.sf(d, np.round(big * small / (big + small))), 0, 1))


def chisquare_p_value(ref: Side, cur: Side, column_type: str) -> float:
    from scipy.stats import chisquare

    _, a, b = _counts(ref, cur)
    f_exp = a * (cur.count / ref.count)
    return float(chisquare(b, f_exp)[1])


def z_p_value(ref: Side, cur: Side, column_type: str) -> float:
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


def wasserstein_normed(ref: Side, cur: Side, column_type: str) -> float:
    """First Wasserstein distance over the reference's population standard deviation (floor 0.001).

    The integral of |F_ref - F_cur| over the merged sorted values, as scipy computes it, with the
    merge done by a stable argsort of two sorted runs (linear) and the CDF differences kept as
    exact integers (held in float64, exact below 2**53): |n_le_ref * m - n_le_cur * n| / (n * m).
    """
    import numpy as np

    if ref.weights is not None or cur.weights is not None:
        return _wasserstein_normed_weighted(ref, cur)
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


def _wasserstein_normed_weighted(ref: Side, cur: Side) -> float:
    """:func:`wasserstein_normed` from distinct values and their counts: the same integral over
    the merged distinct values, with the same exact integer CDF differences."""
    import numpy as np

    keys, a, b = _aligned(*_side_unique_counts(ref), *_side_unique_counts(cur))
    n, m = ref.count, cur.count
    k = np.abs(np.cumsum(a)[:-1] * m - np.cumsum(b)[:-1] * n).astype(np.float64)
    distance = float(np.dot(k, np.diff(keys))) / (n * m)
    values, weights = _side_unique_counts(ref)
    mean = float(np.dot(values, weights)) / n
    std = float(np.sqrt(np.dot((values - mean) ** 2, weights) / n))
    return distance / max(std, 0.001)


def sturges_edges(low: float, high: float, size: int) -> np.ndarray:
    """``np.histogram_bin_edges(values, bins="sturges")`` from the values' minimum, maximum and
    number alone (what an engine returns), computed as numpy computes it."""
    import numpy as np

    first, last = float(low), float(high)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (float(high) - float(low)) / (np.log2(size) + 1.0)
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True, dtype=np.float64)


def _binned(ref: Side, cur: Side, column_type: str, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: Sturges histogram for numerical columns with > 20 reference
    values, else the share of each distinct value."""
    import numpy as np

    if column_type == NUMERICAL and ref.n_unique() > 20:
        if ref.hist is not None:  # counted by an engine over the shared Sturges edges
            ref_p, cur_p = ref.hist / ref.count, cur.hist / cur.count
        elif ref.weights is not None:
            low = min(ref.sorted_values[0], cur.sorted_values[0])
            high = max(ref.sorted_values[-1], cur.sorted_values[-1])
            bins = sturges_edges(low, high, ref.count + cur.count)
            ref_p = np.histogram(ref.sorted_values, bins, weights=ref.weights)[0] / ref.count
            cur_p = np.histogram(cur.sorted_values, bins, weights=cur.weights)[0] / cur.count
        else:
            bins = np.histogram_bin_edges(
                np.concatenate((ref.sorted_values, cur.sorted_values)), bins="sturges"
            )
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


def jensenshannon_distance(ref: Side, cur: Side, column_type: str) -> float:
    from scipy.spatial import distance

    ref_p, cur_p = _binned(ref, cur, column_type, fill_zeroes=False)
    return float(distance.jensenshannon(ref_p, cur_p))


def psi_value(ref: Side, cur: Side, column_type: str) -> float:
    import numpy as np

    ref_p, cur_p = _binned(ref, cur, column_type, fill_zeroes=True)
    return float(np.sum((ref_p - cur_p) * np.log(ref_p / cur_p)))


# --------------------------------------------------------------------------------------------
# the tests


Kernel = Callable[[Side, Side, str], float]


class StatTest(NamedTuple):
    """An Evidently stat test: ``STAT_TESTS[name][0]`` and ``[1]`` are its types and threshold."""

    column_types: tuple[str, ...]
    threshold: float
    """Evidently's default threshold."""
    kernel: Kernel | None = None
    """The score from both sides' statistics; None: Evidently's own function computes it."""
    drifts: Callable[[float, float], bool] | None = None
    """``drifts(score, threshold)``, for the tests with a kernel."""


# Evidently 0.7's registered stat tests.
STAT_TESTS: dict[str, StatTest] = {
    "anderson": StatTest((NUMERICAL,), 0.1),
    "chisquare": StatTest((CATEGORICAL,), 0.05, chisquare_p_value, operator.lt),
    "cramer_von_mises": StatTest((NUMERICAL,), 0.1),
    "ed": StatTest((NUMERICAL,), 0.1),
    "es": StatTest((NUMERICAL,), 0.05),
    "fisher_exact": StatTest((CATEGORICAL,), 0.1),
    "g_test": StatTest((CATEGORICAL,), 0.1),
    "hellinger": StatTest((CATEGORICAL, NUMERICAL), 0.1),
    "jensenshannon": StatTest((CATEGORICAL, NUMERICAL), 0.1, jensenshannon_distance, operator.ge),
    "kl_div": StatTest((CATEGORICAL, NUMERICAL), 0.1),
    "ks": StatTest((NUMERICAL,), 0.05, ks_p_value, operator.le),
    "mannw": StatTest((NUMERICAL,), 0.05),
    "empirical_mmd": StatTest((NUMERICAL,), 0.1),
    "psi": StatTest((CATEGORICAL, NUMERICAL), 0.1, psi_value, operator.ge),
    "t_test": StatTest((NUMERICAL,), 0.05),
    "perc_text_content_drift": StatTest((TEXT,), 0.95),
    "abs_text_content_drift": StatTest((TEXT,), 0.55),
    "TVD": StatTest((CATEGORICAL,), 0.1),
    "wasserstein": StatTest((NUMERICAL,), 0.1, wasserstein_normed, operator.ge),
    "z": StatTest((CATEGORICAL,), 0.05, z_p_value, operator.lt),
}

FAST_TESTS = frozenset(name for name, test in STAT_TESTS.items() if test.kernel is not None)
"""Tests computed here; the others run through Evidently's own functions."""


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


def evidently_test(
    reference: pd.Series, current: pd.Series, column_type: str, method: str | None, threshold: float | None
) -> tuple[str, float, float, bool]:
    """Evidently's own stat-test function on the cleaned columns (text columns, and the tests
    without a kernel here): ``(method, score, threshold, drifted)``."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType(column_type)
    ref, cur = _clean(reference), _clean(current)
    test = get_stattest(ref, cur, kind, method)
    outcome = test(ref, cur, kind, threshold)
    return test.name, float(outcome.drift_score), float(outcome.actual_threshold), bool(outcome.drifted)
