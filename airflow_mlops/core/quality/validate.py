"""The gate's steps without Airflow: column check, GX validation and verdict on a DataFrame
(:func:`validate_frame`, what ``DataQualityGateOperator.execute`` runs between reading its inputs
and writing its outputs), and the same from a data URI and a suite (:func:`validate_table`: the
CLI's ``check``, the bench, the docs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.quality.gx import (
    CompiledSuite,
    GxSource,
    check_columns,
    compile_suite,
    run_validation,
)
from airflow_mlops.core.quality.suite import load_suite
from airflow_mlops.core.quality.verdict import FailOn, parse_fail_on, summarize

if TYPE_CHECKING:
    import pandas as pd


def validate_frame(
    df: pd.DataFrame,
    compiled: CompiledSuite,
    *,
    fail_on: FailOn,
    result_format: str | dict = "SUMMARY",
    data: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check ``df`` (read from ``data``) has the columns the suite is about, validate it and take
    the verdict; returns ``(summary, full_result)``.

    :param fail_on: a value :func:`~airflow_mlops.core.quality.verdict.parse_fail_on` returned.
    :raises MissingColumnError: the suite is about columns ``df`` lacks.
    """
    check_columns(compiled, list(df.columns), data)
    result = run_validation(df, compiled, result_format)
    summary = summarize(result, fail_on=fail_on, row_count=len(df), data=data, suite=compiled.suite.source)
    return summary, result


def validate_source(
    source: GxSource,
    columns: Sequence[str],
    row_count: int,
    compiled: CompiledSuite,
    *,
    fail_on: FailOn,
    result_format: str | dict = "SUMMARY",
    data: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`validate_frame` for a table an engine holds: GX runs its metrics as the engine's
    queries (:class:`GxSource`); the same summary and full result.

    :param columns: the table's columns; :param row_count: its rows (for the summary).
    :raises MissingColumnError: the suite is about columns the table lacks.
    """
    check_columns(compiled, list(columns), data)
    result = run_validation(source, compiled, result_format)
    summary = summarize(result, fail_on=fail_on, row_count=row_count, data=data, suite=compiled.suite.source)
    return summary, result


def validate_table(
    data: str,
    suite: str | Sequence[Mapping] | Mapping,
    *,
    fail_on: str = "critical",
    result_format: str | dict = "SUMMARY",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load, check and validate ``data`` against ``suite``; returns ``(summary, full_result)``.

    :raises ValueError: an unknown ``fail_on`` (before anything is read).
    """
    from airflow_mlops.core.data import read_table

    checked = parse_fail_on(fail_on)
    compiled = compile_suite(load_suite(suite))
    return validate_frame(read_table(data), compiled, fail_on=checked, result_format=result_format, data=data)
