"""The HTML page (no GX here)."""

from __future__ import annotations

from airflow_mlops.core.quality.report import render_html
from airflow_mlops.core.quality.verdict import summarize
from tests.unit.core.quality.samples import validation_result


def test_html_report_is_escaped_and_names_failures():
    summary = summarize(
        validation_result(), fail_on="critical", row_count=10, data="d.parquet", suite="s.json"
    )
    page = render_html(summary, validation_result(), result_link="validation.json")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<tr class=") == 4
    assert "FAILED (blocking)" in page and "failed (not blocking)" in page and "passed" in page
    assert "expect_table_row_count_to_be_between" in page
    assert "href='validation.json'" in page
    assert "1.24.1" in page
