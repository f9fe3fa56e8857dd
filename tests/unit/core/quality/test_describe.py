"""Results in words: expected, observed, message (no GX here)."""

from __future__ import annotations

import pytest

from airflow_mlops.core.quality.describe import describe_result
from tests.unit.core.quality.samples import result_item


def test_map_expectation_message_with_sample():
    item = result_item(
        "expect_column_values_to_be_between",
        {"column": "age", "min_value": 0, "max_value": 120},
        {
            "element_count": 10000,
            "unexpected_count": 312,
            "partial_unexpected_list": [-1, 999, -1],
            "partial_unexpected_counts": [{"value": -1, "count": 2}, {"value": 999, "count": 1}],
        },
    )
    row = describe_result(item)
    assert (
        row["message"]
        == "column 'age': 312 of 10000 values (3.1%) outside [0, 120]; unexpected sample: [-1, 999]"
    )
    assert row["column"] == "age"
    assert row["observed"] == {
        "unexpected_count": 312,
        "element_count": 10000,
        "unexpected_percent": 3.12,
        "sample": [-1, 999],
    }
    assert row["expected"] == "values within [0, 120]"


@pytest.mark.parametrize(
    ("type_", "kwargs", "result", "message"),
    [
        ("expect_column_values_to_not_be_null", {"column": "id"},
         {"element_count": 50, "unexpected_count": 2, "partial_unexpected_list": [None, None]},
         "column 'id': 2 of 50 values (4.0%) are null"),
        ("expect_column_values_to_be_in_set", {"column": "c", "value_set": ["a", "b"], "mostly": 0.95},
         {"element_count": 10, "unexpected_count": 1, "partial_unexpected_list": ["z"]},
         "column 'c': 1 of 10 values (10.0%) not in ['a', 'b'] (at most 5.0% allowed); unexpected sample: ['z']"),
        ("expect_column_values_to_be_between", {"column": "p", "min_value": 0, "strict_min": True},
         {"element_count": 1000000, "unexpected_count": 3, "partial_unexpected_list": [0.0]},
         "column 'p': 3 of 1000000 values (0.0003%) at or below 0; unexpected sample: [0]"),
        ("expect_column_values_to_be_between", {"column": "age", "max_value": 120},
         {"element_count": 8, "unexpected_count": 2, "partial_unexpected_list": [130, 999]},
         "column 'age': 2 of 8 values (25.0%) above 120; unexpected sample: [130, 999]"),
        ("expect_column_value_lengths_to_be_between", {"column": "zip", "min_value": 5, "max_value": 5},
         {"element_count": 4, "unexpected_count": 1, "partial_unexpected_list": ["123"]},
         "column 'zip': 1 of 4 values (25.0%) have a length outside [5, 5]; unexpected sample: ['123']"),
        ("expect_column_mean_to_be_between", {"column": "x", "min_value": 1.5, "max_value": 2.5},
         {"observed_value": 3.14159265},
         "column 'x': mean is 3.14159, expected within [1.5, 2.5]"),
        ("expect_table_row_count_to_be_between", {"min_value": 100},
         {"observed_value": 12}, "table: row count is 12, expected >= 100"),
        ("expect_table_columns_to_match_set", {"column_set": ["a", "b", "c"], "exact_match": True},
         {"observed_value": ["a", "c", "d"]},
         "table: missing columns ['b']; unexpected columns ['d']; expected columns exactly ['a', 'b', 'c']"),
        ("expect_column_values_to_be_of_type", {"column": "x", "type_": "int64"},
         {"observed_value": "float64"}, "column 'x': dtype is float64, expected int64"),
        ("expect_column_distinct_values_to_be_in_set", {"column": "x", "value_set": [1, 2]},
         {"observed_value": [1, 2, 7]},
         "column 'x': unexpected distinct values [7]; expected distinct values within [1, 2]"),
        ("expect_column_to_exist", {"column": "gone"}, {}, "column 'gone' does not exist"),
        ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "end", "column_B": "start"},
         {"element_count": 4, "unexpected_count": 1, "partial_unexpected_list": [[1, 2]]},
         "columns 'end', 'start': 1 of 4 values (25.0%) violate: column pair values a to be greater than b "
         "{\"column_A\": \"end\", \"column_B\": \"start\"}; unexpected sample: [[1, 2]]"),
    ],
)  # fmt: skip
def test_messages(type_, kwargs, result, message):
    assert describe_result(result_item(type_, kwargs, result))["message"] == message


def test_exception_raised_inside_gx_is_a_failure_with_its_message():
    keyed = {
        "MetricConfigurationID(metric_name='column_values.between.condition')": {
            "exception_traceback": "Traceback ...",
            "exception_message": "Column values, min_value, and max_value must either be None or of the same type.",
        }
    }
    row = describe_result(
        result_item(
            "expect_column_values_to_be_between", {"column": "x", "min_value": 0}, {}, exception_info=keyed
        )
    )
    assert row["message"] == (
        "column 'x': expect_column_values_to_be_between could not be evaluated: Column values, min_value, "
        "and max_value must either be None or of the same type."
    )
    flat = {"raised_exception": True, "exception_message": "boom"}
    assert describe_result(result_item("expect_column_to_exist", {"column": "x"}, {}, exception_info=flat))[
        "message"
    ].endswith("could not be evaluated: boom")
