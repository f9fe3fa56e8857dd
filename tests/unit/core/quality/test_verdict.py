"""The gate's verdict: which failures block, the summary, the message (no GX here)."""

from __future__ import annotations

import json

import pytest

from airflow_mlops.core.quality.verdict import (
    blocks,
    failure_message,
    parse_fail_on,
    summarize,
    summary_metrics,
)
from tests.unit.core.quality.samples import validation_result


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
    assert blocks(severity, fail_on) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [("critical", "critical"), (" Warning ", "warning"), ("ANY", "any")]
)
def test_parse_fail_on_accepts_the_three_settings(value, expected):
    assert parse_fail_on(value) == expected


@pytest.mark.parametrize("value", ["error", "", None, "info"])
def test_parse_fail_on_names_the_setting_and_the_value(value):
    with pytest.raises(ValueError) as err:
        parse_fail_on(value)
    assert str(err.value) == f"fail_on must be one of critical, warning, any, got {value!r}"


@pytest.mark.parametrize(
    ("fail_on", "success", "blocking"),
    [
        ("critical", False, [False, True, False]),
        ("warning", False, [True, True, False]),
        ("any", False, [True, True, True]),
    ],
)
def test_summarize_marks_blocking_by_fail_on(fail_on, success, blocking):
    summary = summarize(validation_result(), fail_on=fail_on, row_count=10, data="d.parquet", suite="s.json")
    assert summary["success"] is success
    assert [f["blocking"] for f in summary["failed"]] == blocking
    assert [f["severity"] for f in summary["failed"]] == ["warning", "critical", "info"]
    assert summary["evaluated"] == 4
    assert summary["statistics"]["failed_by_severity"] == {"info": 1, "warning": 1, "critical": 1}
    assert summary["statistics"]["row_count"] == 10
    json.dumps(summary)  # XCom-able


def test_summarize_passes_when_only_lesser_failures():
    result = validation_result()
    result["results"] = [r for r in result["results"] if r["expectation_config"]["severity"] != "critical"]
    summary = summarize(result, fail_on="critical")
    assert summary["success"] is True
    assert len(summary["failed"]) == 2


def test_failure_message_lists_blocking_then_the_rest():
    summary = summarize(validation_result(), fail_on="critical", data="d.parquet", suite="s.json")
    summary["report_uri"] = "file:///r/validation.html"
    message = failure_message(summary)
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
    lines = failure_message(summary, limit=5).splitlines()
    assert lines[-1] == "  ... and 25 more (see the report)"


def test_summary_metrics_count_failures_by_severity():
    summary = summarize(validation_result(), fail_on="critical", row_count=10)
    assert summary_metrics(summary) == {
        "evaluated_expectations": 4,
        "failed_expectations": 3,
        "success_percent": 25.0,
        "failed_info": 1,
        "failed_warning": 1,
        "failed_critical": 1,
        "row_count": 10,
    }
