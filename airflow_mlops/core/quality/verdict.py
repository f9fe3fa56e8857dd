"""The gate's verdict: which failed expectations block under ``fail_on``, the summary that goes to
XCom, and the message a failed gate raises with.

``fail_on`` is checked once, where it enters (:func:`parse_fail_on`: the operator, the CLI,
:func:`~airflow_mlops.core.quality.validate.validate_table`); the functions here take the
known-good value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from airflow_mlops.core.quality.describe import describe_result
from airflow_mlops.core.quality.suite import SEVERITIES

FailOn = Literal["critical", "warning", "any"]
FAIL_ON: tuple[FailOn, ...] = ("critical", "warning", "any")
# the least severity that blocks under each fail_on
_LEAST_BLOCKING: dict[str, str] = {"critical": "critical", "warning": "warning", "any": "info"}


def parse_fail_on(value: object) -> FailOn:
    """``value`` as a ``fail_on`` setting (case and surrounding spaces ignored).

    :raises ValueError: naming the setting, the allowed values and ``value``.
    """
    text = str(value).strip().lower()
    if text not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {value!r}")
    return cast(FailOn, text)


def blocks(severity: str, fail_on: FailOn) -> bool:
    """Whether a failed expectation of ``severity`` fails the gate under ``fail_on``."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(_LEAST_BLOCKING[fail_on])


def summarize(
    result: Mapping[str, Any],
    *,
    fail_on: FailOn = "critical",
    row_count: int | None = None,
    data: str | None = None,
    suite: str | None = None,
) -> dict[str, Any]:
    """The gate's verdict from a GX validation result (small, JSON-able: it goes to XCom).

    ``success`` is the gate's verdict: no failed expectation at or above ``fail_on``. Failures
    below it are listed in ``failed`` with ``blocking: false``.

    :param fail_on: a value :func:`parse_fail_on` returned.
    """
    failed = []
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for item in result.get("results", []):
        if item.get("success"):
            continue
        row = describe_result(item)
        row["blocking"] = blocks(row["severity"], fail_on)
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
        failed.append(row)
    stats = dict(result.get("statistics") or {})
    stats["failed_by_severity"] = by_severity
    if row_count is not None:
        stats["row_count"] = int(row_count)
    blocking = [f for f in failed if f["blocking"]]
    return {
        "success": not blocking,
        "fail_on": fail_on,
        "evaluated": int(stats.get("evaluated_expectations", len(result.get("results", [])))),
        "failed": failed,
        "statistics": stats,
        "data": data,
        "suite": suite,
        "report_uri": None,
    }


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The verdict's numbers, as metrics of the report's MLflow run."""
    stats = summary["statistics"]
    metrics = {
        "evaluated_expectations": summary["evaluated"],
        "failed_expectations": len(summary["failed"]),
        "success_percent": stats.get("success_percent") or 0.0,
        **{f"failed_{k}": v for k, v in stats["failed_by_severity"].items()},
    }
    if "row_count" in stats:
        metrics["row_count"] = stats["row_count"]
    return metrics


def failure_message(summary: Mapping[str, Any], limit: int = 25) -> str:
    """Readable multi-line verdict for the exception and the task log."""
    failed = summary.get("failed") or []
    blocking = [f for f in failed if f.get("blocking")]
    other = [f for f in failed if not f.get("blocking")]
    head = (
        f"Data quality gate {'passed' if summary.get('success') else 'FAILED'} for {summary.get('data')} "
        f"(suite {summary.get('suite')}, fail_on={summary.get('fail_on')}): "
        f"{len(failed)} of {summary.get('evaluated')} expectations failed"
    )
    if blocking:
        head += f", {len(blocking)} at or above '{summary.get('fail_on')}'"
    lines = [head]

    def add(rows: list[dict[str, Any]], title: str) -> None:
        if not rows:
            return
        lines.append(title)
        for row in rows[:limit]:
            lines.append(f"  - [{row['severity']}] {row['message']}")
        if len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more (see the report)")

    add(blocking, "Blocking failures:")
    add(
        other,
        "Non-blocking failures:" if blocking else "Failures below the fail_on threshold (not blocking):",
    )
    if summary.get("report_uri"):
        lines.append(f"Report: {summary['report_uri']}")
    return "\n".join(lines)
