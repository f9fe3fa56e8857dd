"""Sides an engine builds (distinct values and their counts, shared Sturges bins) give the scores
of the in-memory sides they summarise."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_mlops.core.drift.columns import NUMERICAL
from airflow_mlops.core.drift.pushdown import _cdf_bounds
from airflow_mlops.core.drift.stats import STAT_TESTS, Side, numerical_side, sturges_edges


def weighted(side: Side) -> Side:
    values, counts = np.unique(side.sorted_values, return_counts=True)
    return Side(count=side.count, sorted_values=values, weights=counts)


@pytest.mark.parametrize("sizes", [(300, 200), (5000, 12000), (20000, 15000)])
@pytest.mark.parametrize("method", ["ks", "wasserstein", "jensenshannon", "psi"])
def test_weighted_sides_score_as_the_values(sizes, method):
    import pandas as pd

    rng = np.random.default_rng(sum(sizes))
    ref = numerical_side(pd.Series(np.round(rng.normal(0, 1, sizes[0]), 2)))
    cur = numerical_side(pd.Series(np.round(rng.normal(0.1, 1.1, sizes[1]), 2)))
    kernel = STAT_TESTS[method].kernel
    assert kernel(weighted(ref), weighted(cur), NUMERICAL) == pytest.approx(
        kernel(ref, cur, NUMERICAL), rel=1e-9
    )


@pytest.mark.parametrize(
    "values", [[0.5, 0.5], [-3.0, 7.25, 1e-3, 2.0], list(np.linspace(-1e6, 3.3e6, 1001))]
)
def test_sturges_edges_are_numpys(values):
    values = np.asarray(values, dtype=float)
    expected = np.histogram_bin_edges(values, bins="sturges")
    np.testing.assert_array_equal(sturges_edges(values.min(), values.max(), values.size), expected)


def test_binned_bounds_hold_the_exact_area():
    rng = np.random.default_rng(7)
    ref, cur = np.sort(rng.normal(0, 1, 4000)), np.sort(rng.normal(0.05, 1, 3000))
    edges = np.linspace(min(ref[0], cur[0]), max(ref[-1], cur[-1]), 33)

    def bins(x):
        index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 31)
        return {int(b): (int((index == b).sum()), float(x[index == b].sum()), float(x[index == b].min()),
                         float(x[index == b].max())) for b in np.unique(index)}  # fmt: skip

    area, d = _cdf_bounds(bins(ref), bins(cur), ref.size, cur.size)
    merged = np.sort(np.concatenate([ref, cur]))
    k = np.searchsorted(ref, merged, "right") * cur.size - np.searchsorted(cur, merged, "right") * ref.size
    exact_area = float(np.sum(np.abs(k[:-1]) * np.diff(merged)))
    assert area.low <= exact_area <= area.high
    assert d.low <= np.abs(k).max() <= d.high
