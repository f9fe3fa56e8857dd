"""Small inputs shared by the quality tests: GX result items, a validation result, a reference
table."""

from __future__ import annotations

from typing import Any


def result_item(
    type_, kwargs, result, success=False, severity="critical", position=1, exception_info=None
) -> dict[str, Any]:
    """One expectation result as GX 1.x writes it (``batch_id`` included, as GX adds it)."""
    return {
        "success": success,
        "position": position,
        "expectation_config": {"type": type_, "kwargs": {"batch_id": "b", **kwargs}, "severity": severity},
        "result": result,
        "exception_info": exception_info or {"raised_exception": False},
    }


def validation_result() -> dict[str, Any]:
    """A failed validation: one pass, then a warning, a critical and an info failure."""
    return {
        "success": False,
        "statistics": {"evaluated_expectations": 4, "successful_expectations": 1, "unsuccessful_expectations": 3,
                       "success_percent": 25.0},
        "results": [
            result_item("expect_column_values_to_not_be_null", {"column": "id"}, {"element_count": 10, "unexpected_count": 0},
                  success=True, position=1),
            result_item("expect_column_values_to_be_in_set", {"column": "c", "value_set": ["a"]},
                  {"element_count": 10, "unexpected_count": 1, "partial_unexpected_list": ["<script>"]},
                  severity="warning", position=2),
            result_item("expect_table_row_count_to_be_between", {"min_value": 100}, {"observed_value": 10}, position=3),
            result_item("expect_column_mean_to_be_between", {"column": "x", "max_value": 1}, {"observed_value": 2},
                  severity="info", position=4),
        ],
        "meta": {"great_expectations_version": "1.24.1"},
    }  # fmt: skip


def reference_frame():
    """300 rows of every column kind the suggestion handles."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 300
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "score": rng.normal(0.5, 0.1, n),
            "city": rng.choice(["paris", "lyon"], n),
            "seg": pd.Categorical(rng.choice(["a", "b"], n)),
            "flag": rng.random(n) > 0.5,
            "opt": np.where(np.arange(n) % 10 == 0, np.nan, 1.0),
            "free_text": [f"id-{i}" for i in range(n)],
            "label": rng.integers(0, 2, n),
        }
    )
