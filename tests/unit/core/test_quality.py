"""Pure logic of the quality gate: suites, severities, verdict wording, HTML. No GX import here."""

from __future__ import annotations

import json

import pytest

from airflow_mlops.core import quality as q


def _item(type_, kwargs, result, success=False, severity="critical", position=1, exception_info=None):
    return {
        "success": success,
        "position": position,
        "expectation_config": {"type": type_, "kwargs": {"batch_id": "b", **kwargs}, "severity": severity},
        "result": result,
        "exception_info": exception_info or {"raised_exception": False},
    }


# ---------------------------------------------------------------------------------------------
# loading suites


def test_load_json_file_with_severities(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "name": "orders",
                "meta": {"owner": "data"},
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
                    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0},
                     "severity": "warning"},
                    {"expectation_type": "expect_column_to_exist", "kwargs": {"column": "y", "batch_id": "old"},
                     "meta": {"severity": "info", "why": "legacy layout"}},
                ],
            }
        )
    )  # fmt: skip
    suite = q.load_suite(str(path))
    assert suite.name == "orders" and suite.source == str(path) and suite.meta == {"owner": "data"}
    assert [e.severity for e in suite.expectations] == ["critical", "warning", "info"]
    assert [e.position for e in suite.expectations] == [1, 2, 3]
    legacy = suite.expectations[2]
    assert legacy.type == "expect_column_to_exist"
    assert legacy.kwargs == {"column": "y"}  # a stale batch_id from another context is dropped
    assert legacy.meta == {"why": "legacy layout"}
    # suite_to_dict writes the GX 1.x layout that load_suite reads back unchanged
    again = q.parse_suite(q.suite_to_dict(suite), source="x", name="x")
    assert [(e.type, e.kwargs, e.severity) for e in again.expectations] == [
        (e.type, e.kwargs, e.severity) for e in suite.expectations
    ]


def test_load_yaml_file_and_inline_list(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text(
        "expectations:\n"
        "  - type: expect_table_row_count_to_be_between\n"
        "    kwargs: {min_value: 10}\n"
        "    severity: WARNING\n"
    )
    suite = q.load_suite(path)
    assert suite.name == "s"
    assert suite.expectations[0].kwargs == {"min_value": 10}
    assert suite.expectations[0].severity == "warning"

    inline = q.load_suite([{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}])
    assert inline.source == "<inline suite>"
    assert inline.expectations[0].severity == "critical"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"expectations": [', ".json", "is not valid JSON: Expecting value at line 1 column 19"),
        ("expectations: [a, b\n", ".yaml", "is not valid YAML"),
        ("", ".yaml", "is empty"),
        ('{"name": "x"}', ".json", "has no 'expectations' list"),
        ('{"expectations": []}', ".json", "has no expectations"),
        ('{"expectations": {"a": 1}}', ".json", "'expectations' must be a list"),
        ('[{"kwargs": {}}]', ".json", "expectation #1: missing 'type'"),
        (
            '[{"type": "expect_x", "kwargs": [1]}]',
            ".json",
            "expectation #1 (expect_x): 'kwargs' must be a dict",
        ),
        (
            '[{"type": "expect_x", "severity": "fatal"}]',
            ".json",
            "severity 'fatal' is not one of info, warning, critical",
        ),
        ('["expect_x"]', ".json", "expectation #1: must be a dict"),
    ],
)
def test_bad_suite_files_name_the_file(tmp_path, content, suffix, message):
    path = tmp_path / f"suite{suffix}"
    path.write_text(content)
    with pytest.raises(q.SuiteError) as err:
        q.load_suite(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_suite_file_and_wrong_suite_type(tmp_path):
    with pytest.raises(q.SuiteError, match="suite file not found: .*nope.json"):
        q.load_suite(str(tmp_path / "nope.json"))
    with pytest.raises(q.SuiteError, match="got int"):
        q.load_suite(3)


# ---------------------------------------------------------------------------------------------
# severities


@pytest.mark.parametrize(
    ("severity", "fail_on", "expected"),
    [
        ("critical", "critical", True),
        ("warning", "critical", False),
        ("info", "critical", False),
        ("critical", "warning", True),
        ("warning", "warning", True),
        ("info", "warning", False),
        ("critical", "any", True),
        ("warning", "any", True),
        ("info", "any", True),
    ],
)
def test_blocks(severity, fail_on, expected):
    assert q.blocks(severity, fail_on) is expected


def test_blocks_rejects_unknown_fail_on():
    with pytest.raises(ValueError, match="fail_on must be one of critical, warning, any"):
        q.blocks("critical", "error")


# ---------------------------------------------------------------------------------------------
# readable verdicts


def test_map_expectation_message_with_sample():
    item = _item(
        "expect_column_values_to_be_between",
        {"column": "age", "min_value": 0, "max_value": 120},
        {
            "element_count": 10000,
            "unexpected_count": 312,
            "partial_unexpected_list": [-1, 999, -1],
            "partial_unexpected_counts": [{"value": -1, "count": 2}, {"value": 999, "count": 1}],
        },
    )
    row = q.describe_result(item)
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
    assert q.describe_result(_item(type_, kwargs, result))["message"] == message


def test_exception_raised_inside_gx_is_a_failure_with_its_message():
    keyed = {
        "MetricConfigurationID(metric_name='column_values.between.condition')": {
            "exception_traceback": "Traceback ...",
            "exception_message": "Column values, min_value, and max_value must either be None or of the same type.",
        }
    }
    row = q.describe_result(
        _item("expect_column_values_to_be_between", {"column": "x", "min_value": 0}, {}, exception_info=keyed)
    )
    assert row["message"] == (
        "column 'x': expect_column_values_to_be_between could not be evaluated: Column values, min_value, "
        "and max_value must either be None or of the same type."
    )
    flat = {"raised_exception": True, "exception_message": "boom"}
    assert q.describe_result(_item("expect_column_to_exist", {"column": "x"}, {}, exception_info=flat))[
        "message"
    ].endswith("could not be evaluated: boom")


def _result():
    return {
        "success": False,
        "statistics": {"evaluated_expectations": 4, "successful_expectations": 1, "unsuccessful_expectations": 3,
                       "success_percent": 25.0},
        "results": [
            _item("expect_column_values_to_not_be_null", {"column": "id"}, {"element_count": 10, "unexpected_count": 0},
                  success=True, position=1),
            _item("expect_column_values_to_be_in_set", {"column": "c", "value_set": ["a"]},
                  {"element_count": 10, "unexpected_count": 1, "partial_unexpected_list": ["<script>"]},
                  severity="warning", position=2),
            _item("expect_table_row_count_to_be_between", {"min_value": 100}, {"observed_value": 10}, position=3),
            _item("expect_column_mean_to_be_between", {"column": "x", "max_value": 1}, {"observed_value": 2},
                  severity="info", position=4),
        ],
        "meta": {"great_expectations_version": "1.24.1"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fail_on", "success", "blocking"),
    [
        ("critical", False, [False, True, False]),
        ("warning", False, [True, True, False]),
        ("any", False, [True, True, True]),
    ],
)
def test_summarize_marks_blocking_by_fail_on(fail_on, success, blocking):
    summary = q.summarize(_result(), fail_on=fail_on, row_count=10, data="d.parquet", suite="s.json")
    assert summary["success"] is success
    assert [f["blocking"] for f in summary["failed"]] == blocking
    assert [f["severity"] for f in summary["failed"]] == ["warning", "critical", "info"]
    assert summary["evaluated"] == 4
    assert summary["statistics"]["failed_by_severity"] == {"info": 1, "warning": 1, "critical": 1}
    assert summary["statistics"]["row_count"] == 10
    json.dumps(summary)  # XCom-able


def test_summarize_passes_when_only_lesser_failures():
    result = _result()
    result["results"] = [r for r in result["results"] if r["expectation_config"]["severity"] != "critical"]
    summary = q.summarize(result, fail_on="critical")
    assert summary["success"] is True
    assert len(summary["failed"]) == 2


def test_failure_message_lists_blocking_then_the_rest():
    summary = q.summarize(_result(), fail_on="critical", data="d.parquet", suite="s.json")
    summary["report_uri"] = "file:///r/validation.html"
    message = q.failure_message(summary)
    assert message.splitlines() == [
        "Data quality gate FAILED for d.parquet (suite s.json, fail_on=critical): 3 of 4 expectations failed, "
        "1 at or above 'critical'",
        "Blocking failures:",
        "  - [critical] table: row count is 10, expected >= 100",
        "Non-blocking failures:",
        "  - [warning] column 'c': 1 of 10 values (10.0%) not in ['a']; unexpected sample: ['<script>']",
        "  - [info] column 'x': mean is 2, expected <= 1",
        "Report: file:///r/validation.html",
    ]


def test_failure_message_truncates_long_lists():
    summary = {"success": False, "fail_on": "critical", "data": "d", "suite": "s", "evaluated": 40,
               "failed": [{"severity": "critical", "blocking": True, "message": f"m{i}"} for i in range(30)]}  # fmt: skip
    lines = q.failure_message(summary, limit=5).splitlines()
    assert lines[-1] == "  ... and 25 more (see the report)"


def test_html_report_is_escaped_and_names_failures():
    summary = q.summarize(_result(), fail_on="critical", row_count=10, data="d.parquet", suite="s.json")
    page = q.render_html(summary, _result(), result_link="validation.json")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<tr class=") == 4
    assert "FAILED (blocking)" in page and "failed (not blocking)" in page and "passed" in page
    assert "expect_table_row_count_to_be_between" in page
    assert "href='validation.json'" in page
    assert "1.24.1" in page


# ---------------------------------------------------------------------------------------------
# suite suggestion


def _reference():
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


def test_suggest_suite_describes_reference():
    df = _reference()
    suite = q.suggest_suite(df, name="ref", reference="ref.parquet")
    assert suite["name"] == "ref"
    assert suite["meta"]["rows"] == 300 and suite["meta"]["reference"] == "ref.parquet"
    by = {}
    for e in suite["expectations"]:
        by.setdefault((e["type"], e["kwargs"].get("column")), e)
    assert by[("expect_table_columns_to_match_set", None)]["kwargs"]["column_set"] == list(df.columns)
    age = by[("expect_column_values_to_be_between", "age")]
    lo, hi = int(df.age.min()), int(df.age.max())
    span = hi - lo
    assert age["kwargs"]["min_value"] <= lo - 0.1 * span and age["kwargs"]["max_value"] >= hi + 0.1 * span
    assert isinstance(age["kwargs"]["min_value"], int) and age["severity"] == "critical"
    score = by[("expect_column_values_to_be_between", "score")]["kwargs"]
    assert score["min_value"] < df.score.min() and score["max_value"] > df.score.max()
    assert by[("expect_column_values_to_be_in_set", "city")]["kwargs"]["value_set"] == ["lyon", "paris"]
    assert by[("expect_column_values_to_be_in_set", "seg")]["kwargs"]["value_set"] == ["a", "b"]
    assert ("expect_column_values_to_be_in_set", "label") not in by  # numeric: a range, not a set
    assert ("expect_column_values_to_be_in_set", "free_text") not in by  # too many distinct values
    assert by[("expect_column_values_to_not_be_null", "age")]["severity"] == "critical"
    opt_null = by[("expect_column_values_to_not_be_null", "opt")]
    assert opt_null["severity"] == "warning" and opt_null["kwargs"]["mostly"] == pytest.approx(
        1 - (0.1 * 2 + 0.01)
    )
    assert by[("expect_column_values_to_be_in_type_list", "flag")]["kwargs"]["type_list"] == [
        "bool",
        "boolean",
    ]
    assert ("expect_column_values_to_be_in_type_list", "seg") not in by
    json.dumps(suite)


def test_suggest_suite_rejects_empty_data():
    with pytest.raises(ValueError, match="empty dataset"):
        q.suggest_suite(_reference().iloc[:0], reference="x.parquet")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_generate_suite_from_uri_writes_loadable_file(tmp_path, suffix):
    data = tmp_path / "ref.parquet"
    _reference().to_parquet(data)
    out = tmp_path / "suites" / f"my_suite{suffix}"
    suite = q.generate_suite(str(data), out)
    assert suite["name"] == "my_suite" and suite["meta"]["reference"] == str(data)
    loaded = q.load_suite(str(out))
    assert loaded.name == "my_suite"
    assert len(loaded.expectations) == len(suite["expectations"])
    assert {e.severity for e in loaded.expectations} == {"critical", "warning"}
