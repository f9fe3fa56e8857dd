"""The drift verdict with the statistics computed by the engine where the data lives.

The engine (DuckDB on the worker, Postgres, Spark, a warehouse) runs a few aggregate statements
per column (:mod:`airflow_mlops.core.engines.sql`) and returns small results; the worker builds
each column's :class:`~airflow_mlops.core.drift.stats.Side` from them and runs the same kernels
as the in-memory path (:func:`~airflow_mlops.core.drift.verdict.test_sides`). Nothing reads a
column into the worker.

Per column, by what it holds:

* **categorical** (strings with repeated values, integers with at most 10 distinct values,
  booleans): each side's value counts (``GROUP BY``). Exact.
* **numerical with at most** :data:`DISTINCT_CAP` **distinct values per side**: the value counts
  again (the distinct values and how often each occurs are all the tests read). Exact: every
  score equals the in-memory path's to float rounding.
* **numerical with more**: ``jensenshannon``/``psi`` count the values over the Sturges bins both
  sides share, as numpy does (exact). ``wasserstein`` and ``ks`` read the merged order of the two
  sides; the engine returns a fine histogram instead (:data:`BINS` bins: count, sum, minimum and
  maximum per bin), from which the score is bounded: where the two CDFs cannot cross inside a
  bin, its area is exact (from the bin's sums); elsewhere it lies between the bin's signed area
  and its width times the largest difference reachable in it. The score reported is the middle of
  that certified interval with ``error_bound`` its half-width. When the threshold falls inside
  the interval the verdict could depend on the approximation, so the column is recomputed exactly
  by the engine (one sorted window over both sides): **verdicts always equal the in-memory path.**
* **text** columns: Evidently's text-drift tests read every value; on an engine they are
  skipped with that reason.

Tests without a kernel here (``anderson``, ``mannw`` ...) need every value: they are refused
before anything runs (:func:`check_engine_methods`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.drift.columns import CATEGORICAL, INTEGER_CARDINALITY_LIMIT, NUMERICAL, TEXT
from airflow_mlops.core.drift.stats import (
    FAST_TESTS,
    STAT_TESTS,
    Side,
    default_method,
    ks_asymptotic_p_value,
    sturges_edges,
)
from airflow_mlops.core.drift.verdict import (
    ColumnDrift,
    DriftConfigError,
    DriftInputError,
    DriftResult,
    check_column_method,
    check_per_column,
    column_names,
    finish,
    test_sides,
    validate_settings,
)
from airflow_mlops.core.engines import sql
from airflow_mlops.core.engines.runner import column_kinds

if TYPE_CHECKING:
    import numpy as np

    from airflow_mlops.core.engines.runner import Runner
    from airflow_mlops.core.engines.sql import Source

DISTINCT_CAP = 50_000
"""Numerical columns with at most this many distinct values per side are counted value by value."""
BINS = 8192
"""Bins of the histogram that bounds ``wasserstein``/``ks`` on columns with more distinct values."""
NUMERIC_KINDS = ("float", "int", "decimal")
_FAMILY = {"bool": "numeric", "int": "numeric", "float": "numeric", "decimal": "numeric", "string": "string"}


@dataclass
class EngineSide:
    """One input on one engine: how to run statements, what to read, and what it holds."""

    runner: Runner
    source: Source
    kinds: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    counts: dict[str, list[tuple]] = field(default_factory=dict)

    def run(self, statement: str) -> list[tuple]:
        return self.runner.query(statement)[1]


def check_engine_methods(method: str | None, per_column_method: Mapping[str, str] | None) -> None:
    """:raises DriftConfigError: a configured test needs every value (it has no kernel here)."""
    for setting, name in [("method", method), *((f"per_column_method[{c!r}]", m) for c, m in (per_column_method or {}).items())]:  # fmt: skip
        if name is not None and name in STAT_TESTS and name not in FAST_TESTS:
            raise DriftConfigError(
                f"{setting}: {name!r} is computed by Evidently from every value, which an engine does "
                f"not return; on engines use one of {', '.join(sorted(FAST_TESTS))}"
            )


def compare_on_engine(
    reference: tuple[Runner, Source],
    current: tuple[Runner, Source],
    *,
    columns: Iterable[str] | None = None,
    drift_share: float = 0.5,
    method: str | None = None,
    per_column_method: Mapping[str, str] | None = None,
    threshold: float | None = None,
    per_column_threshold: Mapping[str, float] | None = None,
    on_column: Callable[[ColumnDrift], None] | None = None,
) -> DriftResult:
    """:func:`~airflow_mlops.core.drift.verdict.compare` with the statistics computed by engines.

    :param reference: ``(runner, source)`` of the reference data.
    :param current: ``(runner, source)`` of the current data (the same runner as the reference
        lets a column be recomputed exactly when a binned bound is not decisive; different
        engines decide by the bound's middle, and say so in the log).
    :raises DriftInputError: different columns, no rows, or no column could be tested.
    :raises DriftConfigError: invalid settings, or a method an engine cannot compute.
    """
    validate_settings(
        drift_share=drift_share,
        method=method,
        per_column_method=per_column_method,
        threshold=threshold,
        per_column_threshold=per_column_threshold,
        columns=columns,
    )
    check_engine_methods(method, per_column_method)
    per_column_method = dict(per_column_method or {})
    per_column_threshold = dict(per_column_threshold or {})
    ref, cur = EngineSide(*reference), EngineSide(*current)
    for side in (ref, cur):
        side.kinds = column_kinds(side.runner, side.source)
    labels = (f" {ref.source.label}", f" {cur.source.label}")
    names = column_names(list(ref.kinds), list(cur.kinds), columns, labels)
    check_per_column(names, per_column_method, per_column_threshold)
    for side in (ref, cur):
        _profile(side, names)
    _count_in_one_scan(ref, cur, names)
    if cur.rows == 0:
        raise DriftInputError(f"current data {cur.source.label} has no rows: nothing to compare")
    if ref.rows == 0:
        raise DriftInputError(f"reference data {ref.source.label} has no rows: nothing to compare with")

    verdicts: dict[str, ColumnDrift] = {}
    for name in names:
        verdict = _one_column(
            name,
            ref,
            cur,
            method=per_column_method.get(name, method),
            threshold=per_column_threshold.get(name, threshold),
        )
        verdicts[name] = verdict
        if on_column is not None:
            on_column(verdict)
    return finish(verdicts, drift_share, ref.rows, cur.rows)


def _profile(side: EngineSide, names: list[str]) -> None:
    """One statement per side: rows, and per column its counts, range, spread and distinct values."""
    described = [(n, side.kinds[n]) for n in names if side.kinds[n] in (*NUMERIC_KINDS, "string", "bool")]
    distinct = [n for n, k in described if k != "bool"]
    row = side.run(sql.profile_sql(side.source, described, distinct))[0]
    side.rows = int(row[0])
    i = 1
    for name, kind in described:
        stats: dict[str, Any] = {"count": int(row[i])}
        i += 1
        if kind in NUMERIC_KINDS:
            finite, low, high, std = row[i : i + 4]
            stats.update(finite=int(finite), min=_float(low), max=_float(high), std=_float(std))
            i += 4
        side.stats[name] = stats
    for name in distinct:
        side.stats[name]["distinct"] = int(row[i] or 0)
        i += 1
    for name in names:
        side.stats.setdefault(name, {"count": None})


def _count_in_one_scan(ref: EngineSide, cur: EngineSide, names: list[str]) -> None:
    """The value counts of every column tested from its counts, one statement per side
    (``GROUPING SETS``): a statement is a job with seconds of overhead on Spark or a warehouse."""
    wanted: list[tuple[str, bool]] = []
    for name in names:
        ref_kind, cur_kind = ref.kinds[name], cur.kinds[name]
        if cur_kind not in _FAMILY or _FAMILY.get(ref_kind) != _FAMILY[cur_kind]:
            continue
        column_type = _column_type(name, cur)
        if column_type == TEXT or (column_type == NUMERICAL and _many_values(name, ref, cur)):
            continue
        wanted.append((name, column_type == NUMERICAL))
    if not wanted:
        return
    for side in (ref, cur):
        spec = [(name, side.kinds[name] if numeric else "raw") for name, numeric in wanted]
        rows = side.run(sql.grouped_counts_sql(side.source, spec))
        found: dict[str, list[tuple]] = {name: [] for name, _ in wanted}
        width = len(wanted)
        for row in rows:
            i = next((j for j in range(width) if row[j] == 0), None)
            if i is not None and row[width + i] is not None:
                found[wanted[i][0]].append((row[width + i], row[-1]))
        side.counts.update(found)


def _many_values(name: str, ref: EngineSide, cur: EngineSide) -> bool:
    """More than :data:`DISTINCT_CAP` distinct values on a side: the binned path."""
    return max(ref.stats[name].get("distinct", 0), cur.stats[name].get("distinct", 0)) > DISTINCT_CAP


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _one_column(
    name: str, ref: EngineSide, cur: EngineSide, *, method: str | None, threshold: float | None
) -> ColumnDrift:
    ref_kind, cur_kind = ref.kinds[name], cur.kinds[name]
    if cur_kind == "null":
        return ColumnDrift(column=name, skipped="all values are null in current")
    if cur_kind == "datetime":
        return ColumnDrift(
            column=name, skipped="date/time column: date/time columns are not tested for drift"
        )
    if cur_kind not in _FAMILY:
        return ColumnDrift(column=name, skipped=f"{cur_kind} column is not supported")
    column_type = _column_type(name, cur)
    if ref_kind == "null":
        return ColumnDrift(column=name, type=column_type, skipped="all values are null in reference")
    if _FAMILY.get(ref_kind) != _FAMILY[cur_kind]:
        return ColumnDrift(
            column=name,
            type=column_type,
            skipped=f"incompatible types: reference is {ref_kind} ({_FAMILY.get(ref_kind, ref_kind)}), "
            f"current is {cur_kind} ({_FAMILY[cur_kind]})",
        )
    check_column_method(name, column_type, method)
    result = ColumnDrift(column=name, type=column_type)
    if column_type == TEXT:
        result.reference_count, result.current_count = ref.stats[name]["count"], cur.stats[name]["count"]
        result.skipped = (
            "text column: Evidently's text-drift tests read every value, which an engine does not "
            "return (use engine='pandas' for text columns)"
        )
        return result
    if column_type == NUMERICAL and _many_values(name, ref, cur):
        return _binned_column(result, ref, cur, method=method, threshold=threshold)
    sides = [_counted_side(side, name, column_type) for side in (ref, cur)]
    test_sides(result, *sides, method=method, threshold=threshold)
    return result


def _column_type(name: str, cur: EngineSide) -> str:
    """Evidently's rule (:func:`~airflow_mlops.core.drift.columns.infer_column_type`) from the
    engine's counts. An integer column with nulls is numerical: pandas reads it as floats."""
    if name not in cur.types:
        cur.types[name] = _infer_type(name, cur)
    return cur.types[name]


def _infer_type(name: str, cur: EngineSide) -> str:
    kind, stats = cur.kinds[name], cur.stats[name]
    if kind == "bool":
        return CATEGORICAL
    if kind in ("float", "decimal"):
        return NUMERICAL
    if kind == "int":
        if stats["count"] < cur.rows:
            return NUMERICAL
        distinct = stats["distinct"]
        if distinct <= 2 * INTEGER_CARDINALITY_LIMIT:  # approximate counts: count exactly near the limit
            distinct = int(cur.run(sql.count_distinct_sql(cur.source, name))[0][0])
        return CATEGORICAL if distinct <= INTEGER_CARDINALITY_LIMIT else NUMERICAL
    count, distinct = stats["count"], stats["distinct"]
    if count and 0.4 * count <= distinct <= 0.6 * count:  # near Evidently's half: count exactly
        distinct = int(cur.run(sql.count_distinct_sql(cur.source, name))[0][0])
    return TEXT if distinct > count * 0.5 else CATEGORICAL


def _counted_side(side: EngineSide, name: str, column_type: str) -> Side:
    """The exact side from the engine's value counts."""
    import numpy as np

    kind = side.kinds[name]
    rows = side.counts.get(name)
    if rows is None:
        rows = side.run(sql.value_counts_sql(side.source, name, kind if column_type == NUMERICAL else "raw"))
    if column_type == NUMERICAL:
        rows.sort(key=lambda r: float(r[0]))
        values = np.array([float(r[0]) for r in rows], dtype=np.float64)
        weights = np.array([int(r[1]) for r in rows], dtype=np.int64)
        return Side(count=int(weights.sum()), sorted_values=values, weights=weights)
    keys = [_key(r[0], kind) for r in rows]
    counts = np.array([int(r[1]) for r in rows], dtype=np.int64)
    return Side(count=int(counts.sum()), keys=keys, counts=counts)


def _key(value: Any, kind: str) -> Any:
    if kind in ("float", "decimal"):
        return float(value)
    return value


# --------------------------------------------------------------------------------------------
# columns with many distinct values


@dataclass
class _Bounds:
    """A score known to lie in ``[low, high]``."""

    low: float
    high: float

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _binned_column(
    result: ColumnDrift, ref: EngineSide, cur: EngineSide, *, method: str | None, threshold: float | None
) -> ColumnDrift:
    name = result.column
    r, c = ref.stats[name], cur.stats[name]
    n, m = r["finite"], c["finite"]
    result.reference_count, result.current_count = n, m
    if n == 0:
        result.skipped = "all values are null (or infinite) in reference"
        return result
    if m == 0:
        result.skipped = "all values are null (or infinite) in current"
        return result
    # more than DISTINCT_CAP distinct values on a side: far more than the 5 the default reads
    method = method or default_method(NUMERICAL, n, 6)
    test = STAT_TESTS[method]
    result.method = method
    result.threshold = float(test.threshold if threshold is None else threshold)
    if method in ("jensenshannon", "psi"):
        edges = sturges_edges(min(r["min"], c["min"]), max(r["max"], c["max"]), n + m)
        sides = [_hist_side(side, name, edges) for side in (ref, cur)]
        result.score = test.kernel(*sides, NUMERICAL)
        result.drifted = bool(test.drifts(result.score, result.threshold))
        return result
    low, high = min(r["min"], c["min"]), max(r["max"], c["max"])
    bins = [_bins(side, name, low, high) for side in (ref, cur)]
    area, d = _cdf_bounds(*bins, n, m)
    bounds = _score_bounds(method, area, d, n, m, r["std"])
    if _undecided(test.drifts, bounds, result.threshold):
        if _same_engine(ref.runner, cur.runner):
            exact = ref.run(sql.exact_cdf_sql(ref.source, cur.source, name, ref.kinds[name]))[0]
            area_exact, d_exact = float(exact[2] or 0.0), float(exact[3] or 0)
            bounds = _score_bounds(
                method, _Bounds(area_exact, area_exact), _Bounds(d_exact, d_exact), n, m, r["std"]
            )
    result.score = bounds.middle
    result.error_bound = bounds.half_width if bounds.half_width > 0 else None
    result.drifted = bool(test.drifts(result.score, result.threshold))
    return result


def _same_engine(a: Runner, b: Runner) -> bool:
    return getattr(a, "engine_key", id(a)) == getattr(b, "engine_key", id(b))


def _undecided(drifts: Callable[[float, float], bool], bounds: _Bounds, threshold: float) -> bool:
    return bounds.high > bounds.low and drifts(bounds.low, threshold) != drifts(bounds.high, threshold)


def _score_bounds(method: str, area: _Bounds, d: _Bounds, n: int, m: int, std: float | None) -> _Bounds:
    if method == "wasserstein":
        scale = float(n) * float(m) * max(float(std or 0.0), 0.001)
        return _Bounds(area.low / scale, area.high / scale)
    # ks: the p-value falls as the statistic grows
    nm = float(n) * float(m)
    if max(n, m) <= 10_000:  # scipy's exact p-value: not reached (sides this small are counted)
        raise DriftInputError("ks on binned statistics needs a side of more than 10000 values")
    return _Bounds(ks_asymptotic_p_value(d.high / nm, n, m), ks_asymptotic_p_value(d.low / nm, n, m))


def _hist_side(side: EngineSide, name: str, edges: np.ndarray) -> Side:
    import numpy as np

    hist = np.zeros(len(edges) - 1, dtype=np.int64)
    for index, count in side.run(sql.edges_counts_sql(side.source, name, side.kinds[name], list(edges))):
        hist[int(index)] += int(count)
    return Side(count=int(hist.sum()), hist=hist, distinct=side.stats[name]["distinct"])


def _bins(side: EngineSide, name: str, low: float, high: float) -> dict[int, tuple[int, float, float, float]]:
    rows = side.run(sql.histogram_sql(side.source, name, side.kinds[name], low, high, BINS))
    return {int(b): (int(k), float(s), float(lo), float(hi)) for b, k, s, lo, hi in rows}


def _cdf_bounds(ref_bins: dict, cur_bins: dict, n: int, m: int) -> tuple[_Bounds, _Bounds]:
    """Bounds of the area between the two (count-scaled) CDFs and of their largest gap.

    With ``K(x) = n_le_ref(x) * m - n_le_cur(x) * n`` (exact integers), across a gap between bins
    ``K`` is constant; inside a bin ``[lo, hi]`` it moves between ``K_before - n*cur_in_bin`` and
    ``K_before + m*ref_in_bin``, and its signed integral is exact from the bins' sums:
    ``K_before*(hi-lo) + m*sum(hi - x_ref) - n*sum(hi - x_cur)``.
    """
    area_low = area_high = 0.0
    d_low = d_high = 0
    k = 0
    previous_hi: float | None = None
    for b in sorted(set(ref_bins) | set(cur_bins)):
        nr, sr, lor, hir = ref_bins.get(b, (0, 0.0, math.inf, -math.inf))
        nc, sc, loc, hic = cur_bins.get(b, (0, 0.0, math.inf, -math.inf))
        lo, hi = min(lor, loc), max(hir, hic)
        if previous_hi is not None:
            gap = abs(k) * (lo - previous_hi)
            area_low += gap
            area_high += gap
        width = hi - lo
        signed = k * width + m * (nr * hi - sr) - n * (nc * hi - sc)
        bottom, top = k - n * nc, k + m * nr
        if bottom >= 0 or top <= 0:  # K keeps its sign in the bin: its area is the signed one
            area_low += abs(signed)
            area_high += abs(signed)
        else:
            area_low += abs(signed)
            area_high += width * max(-bottom, top)
        k = k + m * nr - n * nc
        d_low = max(d_low, abs(k))
        d_high = max(d_high, abs(bottom), abs(top), abs(k))
        previous_hi = hi
    # float sums: allow for their rounding, so the bound stays a bound
    slack = 1e-9 * area_high
    return _Bounds(max(area_low - slack, 0.0), area_high + slack), _Bounds(float(d_low), float(d_high))
