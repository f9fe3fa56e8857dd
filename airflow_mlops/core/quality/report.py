"""The gate's HTML page: verdict, context, and one row per expectation. Self-contained (no
scripts, no external assets), every value escaped."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from airflow_mlops.core.quality.describe import describe_result
from airflow_mlops.core.quality.verdict import blocks

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem;margin-bottom:.2rem}.verdict{font-size:1.1rem;font-weight:600;padding:.4rem .8rem;
border-radius:6px;display:inline-block}.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.9rem}th,td{border:1px solid #d0d7de;
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}tr.blocking td{background:#ffebe9}
tr.nonblocking td{background:#fff8c5}code{font-size:.85rem}dl{display:grid;grid-template-columns:max-content auto;
gap:.2rem 1rem}dt{font-weight:600}.sev-critical{color:#a40e26;font-weight:600}.sev-warning{color:#9a6700}
"""


def render_html(
    summary: Mapping[str, Any], result: Mapping[str, Any], *, result_link: str | None = None
) -> str:
    """A small self-contained HTML page: verdict, context, and one table row per expectation."""
    esc = html.escape
    stats = summary.get("statistics") or {}
    fail_on = summary.get("fail_on") or "critical"
    rows = []
    for item in result.get("results", []):
        row = describe_result(item)
        if row["success"]:
            status, css = "passed", "passed"
        elif blocks(row["severity"], fail_on):
            status, css = "FAILED (blocking)", "blocking"
        else:
            status, css = "failed (not blocking)", "nonblocking"
        observed = row["observed"]
        observed_text = "" if observed is None else json.dumps(observed, default=str)
        rows.append(
            f"<tr class='{css}'><td>{esc(str(row['position'] or ''))}</td>"
            f"<td><code>{esc(row['expectation'])}</code></td>"
            f"<td>{esc(_column_text(row['column']))}</td>"
            f"<td class='sev-{esc(row['severity'])}'>{esc(row['severity'])}</td>"
            f"<td>{esc(status)}</td><td>{esc(row['expected'])}</td>"
            f"<td><code>{esc(observed_text)}</code></td><td>{esc(row['message'])}</td></tr>"
        )
    verdict = "PASSED" if summary.get("success") else "FAILED"
    meta = result.get("meta") or {}
    facts = [
        ("Data", summary.get("data")),
        ("Suite", summary.get("suite")),
        ("Fail on", fail_on),
        ("Rows", stats.get("row_count")),
        ("Evaluated", summary.get("evaluated")),
        ("Failed", len(summary.get("failed") or [])),
        (
            "Failed by severity",
            ", ".join(f"{k}: {v}" for k, v in (stats.get("failed_by_severity") or {}).items()),
        ),
        ("Success percent", stats.get("success_percent")),
        ("Validated at", meta.get("validation_time")),
        ("Great Expectations", meta.get("great_expectations_version")),
    ]
    facts_html = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc('' if v is None else str(v))}</dd>" for k, v in facts if v is not None
    )
    link = (
        f"<p>Full validation result: <a href='{esc(result_link)}'>{esc(result_link)}</a></p>"
        if result_link
        else ""
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Data quality: {esc(verdict)} - {esc(str(summary.get('suite')))}</title><style>{_CSS}</style>"
        "</head><body>"
        f"<h1>Data quality gate</h1><p class='verdict {'pass' if summary.get('success') else 'fail'}'>"
        f"{esc(verdict)}</p><dl>{facts_html}</dl>{link}"
        "<table><thead><tr><th>#</th><th>Expectation</th><th>Column</th><th>Severity</th><th>Status</th>"
        "<th>Expected</th><th>Observed</th><th>Details</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )


def _column_text(column: Any) -> str:
    if column is None:
        return "(table)"
    if isinstance(column, list):
        return ", ".join(map(str, column))
    return str(column)
