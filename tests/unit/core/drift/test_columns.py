"""Column typing: Evidently's rule, and the reasons a column is not tested."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.drift import CATEGORICAL, NUMERICAL, TEXT, infer_column_type

N = 100


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        pytest.param(pd.Series(np.arange(N) / 7), NUMERICAL, id="float"),
        pytest.param(pd.Series(np.arange(N) % 10), CATEGORICAL, id="int-10-values"),
        pytest.param(pd.Series(np.arange(N) % 11), NUMERICAL, id="int-11-values"),
        pytest.param(pd.Series(np.arange(N) % 11, dtype="uint8"), NUMERICAL, id="uint"),
        pytest.param(pd.Series(np.arange(N) % 3, dtype="Int64"), CATEGORICAL, id="nullable-int"),
        pytest.param(pd.Series([True, False] * (N // 2)), CATEGORICAL, id="bool"),
        pytest.param(pd.Series(["a", "b"] * (N // 2), dtype="category"), CATEGORICAL, id="category"),
        pytest.param(pd.Series([f"v{i % 50}" for i in range(N)]), CATEGORICAL, id="strings-half-distinct"),
        pytest.param(pd.Series([f"v{i % 51}" for i in range(N)]), TEXT, id="strings-mostly-distinct"),
        pytest.param(
            pd.Series([f"v{i % 3}" for i in range(N)], dtype="string"), CATEGORICAL, id="string-dtype"
        ),
    ],
)
def test_testable_columns_get_evidently_type(series, expected):
    assert infer_column_type(series) == (expected, None)


@pytest.mark.parametrize(
    ("series", "reason"),
    [
        pytest.param(pd.Series(pd.date_range("2024-01-01", periods=N)), "date/time", id="datetime"),
        pytest.param(pd.Series([None] * N, dtype=object), "all values are null in current", id="all-null"),
        pytest.param(
            pd.Series([1, 2.5] * (N // 2), dtype=object), "cast it to a numeric dtype", id="numbers"
        ),
        pytest.param(pd.Series(["a", 1] * (N // 2), dtype=object), "mixed types (int and str)", id="mixed"),
        pytest.param(pd.Series([b"x"] * N, dtype=object), "object column of bytes values", id="bytes"),
    ],
)
def test_untestable_columns_say_why(series, reason):
    column_type, why = infer_column_type(series)
    assert column_type is None and reason in why
