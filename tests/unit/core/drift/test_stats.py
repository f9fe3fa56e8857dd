"""The statistical kernels, the test table, and Evidently's default choice of test.

The kernels read only each side's sufficient statistics (sorted values, value counts): the tests
build those directly, as another engine would, and expect the scores the pandas path gives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.drift import (
    CATEGORICAL,
    NUMERICAL,
    STAT_TESTS,
    TEXT,
    Side,
    column_drift,
    default_method,
)
from airflow_mlops.core.drift.stats import FAST_TESTS


def test_wasserstein_matches_scipy_with_ties_and_unequal_sizes():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(11)
    ref = pd.Series(rng.integers(0, 40, 5000).astype(float))
    cur = pd.Series(rng.integers(3, 50, 3333).astype(float))
    result = column_drift("x", ref, cur, NUMERICAL)
    assert result.method == "wasserstein"
    expected = wasserstein_distance(ref, cur) / np.std(ref)
    assert result.score == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", ["ks", "wasserstein", "jensenshannon", "psi"])
def test_numerical_kernels_need_only_sorted_values(method):
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 700), rng.normal(0.2, 1.1, 500)
    expected = column_drift("x", pd.Series(ref), pd.Series(cur), NUMERICAL, method=method).score
    sides = [Side(count=a.size, sorted_values=np.sort(a)) for a in (ref, cur)]
    assert STAT_TESTS[method].kernel(*sides, NUMERICAL) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", ["chisquare", "jensenshannon", "psi"])
def test_categorical_kernels_need_only_value_counts(method):
    reference = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = pd.Series(["c"] * 40 + ["a"] * 25 + ["b"] * 15)
    expected = column_drift("x", reference, current, CATEGORICAL, method=method).score
    # what a GROUP BY would return, in its own order
    ref = Side(count=100, keys=["c", "b", "a"], counts=np.array([20, 30, 50]))
    cur = Side(count=80, keys=["b", "a", "c"], counts=np.array([15, 25, 40]))
    assert STAT_TESTS[method].kernel(ref, cur, CATEGORICAL) == pytest.approx(expected, rel=1e-12)


def test_z_kernel_needs_only_value_counts():
    reference, current = pd.Series([True] * 60 + [False] * 40), pd.Series([True] * 30 + [False] * 50)
    expected = column_drift("x", reference, current, CATEGORICAL).score
    ref = Side(count=100, keys=[True, False], counts=np.array([60, 40]))
    cur = Side(count=80, keys=[False, True], counts=np.array([50, 30]))
    assert STAT_TESTS["z"].kernel(ref, cur, CATEGORICAL) == pytest.approx(expected, rel=1e-12)


def test_the_table_computes_six_tests_and_delegates_the_rest():
    assert FAST_TESTS == {"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"}
    for name, test in STAT_TESTS.items():
        assert (test.kernel is None) == (test.drifts is None), name
    # indexable as the (column types, default threshold) pairs it used to be
    assert STAT_TESTS["ks"][:2] == ((NUMERICAL,), 0.05)
    assert STAT_TESTS["hellinger"][:2] == ((CATEGORICAL, NUMERICAL), 0.1)


@pytest.mark.parametrize(
    ("method", "score", "drifted"),
    [
        ("ks", 0.05, True),  # p-value at the threshold drifts for ks
        ("chisquare", 0.05, False),  # ... but not for chisquare and z
        ("z", 0.049, True),
        ("wasserstein", 0.1, True),  # distances drift at or above
        ("psi", 0.099, False),
    ],
)
def test_verdict_direction(method, score, drifted):
    test = STAT_TESTS[method]
    assert test.drifts(score, test.threshold) is drifted


@pytest.mark.parametrize(
    ("column_type", "reference_count", "n_values", "method"),
    [
        (NUMERICAL, 1000, 6, "ks"),
        (NUMERICAL, 1000, 5, "chisquare"),
        (NUMERICAL, 1000, 2, "z"),
        (CATEGORICAL, 1000, 3, "chisquare"),
        (CATEGORICAL, 1000, 2, "z"),
        (NUMERICAL, 1001, 6, "wasserstein"),
        (NUMERICAL, 1001, 5, "jensenshannon"),
        (CATEGORICAL, 1001, 40, "jensenshannon"),
        (TEXT, 1000, 900, "perc_text_content_drift"),
        (TEXT, 1001, 900, "abs_text_content_drift"),
    ],
)
def test_default_method_follows_evidently(column_type, reference_count, n_values, method):
    assert default_method(column_type, reference_count, n_values) == method
