"""What an approver reads: the markdown body of a promotion's approval request.

The Airflow UI renders the body of a Human-in-the-loop request as markdown. Every piece of text
that is not this module's own (the run's reason, the requester's name, the evaluation's reasons,
metric names) is written with :func:`md_text`: one line, markdown syntax escaped, so a reason typed
in the trigger form cannot close a section and forge another ("**Evaluation**: promote").

No Airflow import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_MD_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=&:$^])")
REASON_LIMIT = 500


def md_text(value: Any, limit: int = REASON_LIMIT) -> str:
    """``value`` as inert markdown: whitespace (newlines included) collapsed to single spaces,
    control characters dropped, at most ``limit`` characters, every markdown character escaped."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MD_SYNTAX.sub(r"\\\1", text)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:.3f}"


def _change(candidate: Any, champion: Any) -> str:
    if _number(candidate) == "–" or _number(champion) == "–":
        return "–"
    return f"{candidate - champion:+.3f}"


def _version(label: str, version: Any, url: str | None) -> str:
    text = f"{label} v{md_text(version, 20)}"
    return f"[{text}]({url})" if url else text


def metrics_table(record: Mapping[str, Any], metric: str | None = None) -> str:
    """Candidate and champion side by side, three decimals, the deciding ``metric`` first."""
    candidate = record.get("candidate") or {}
    champion = record.get("champion") or None
    cand_metrics = candidate.get("metrics") or {}
    champ_metrics = (champion or {}).get("metrics") or {}
    names = list(dict.fromkeys([*([metric] if metric else []), *cand_metrics, *champ_metrics]))
    head = f"| metric | candidate v{md_text(candidate.get('version'), 20)} |"
    rule = "|---|---:|"
    if champion:
        head += f" champion v{md_text(champion.get('version'), 20)} | change |"
        rule += "---:|---:|"
    rows = [head, rule]
    for name in names:
        row = f"| {md_text(name, 60)} | {_number(cand_metrics.get(name))} |"
        if champion:
            row += f" {_number(champ_metrics.get(name))} | {_change(cand_metrics.get(name), champ_metrics.get(name))} |"
        rows.append(row)
    return "\n".join(rows)


def approval_body(
    record: Mapping[str, Any],
    plan: Mapping[str, Any],
    *,
    model_name: str,
    metric: str | None = None,
    candidate_url: str | None = None,
    champion_url: str | None = None,
    requested_by: str | None = None,
    run_reason: str | None = None,
    why_approval: str | None = None,
) -> str:
    """The approval request's markdown body.

    :param record: the evaluation's decision record.
    :param plan: the promotion plan (:func:`airflow_mlops.core.evaluation.promotion_plan`).
    :param candidate_url: the candidate version's page in the MLflow UI (None: no link).
    :param champion_url: the champion version's page.
    :param requested_by: the run's triggering user.
    :param run_reason: the reason typed in the trigger form (shown quoted, as typed, on one line).
    :param why_approval: why this promotion needs an approval
        (:func:`airflow_mlops.core.trust.approval_required`).
    """
    candidate = record.get("candidate") or {}
    champion = record.get("champion") or None
    lines = [
        f"**Model** {md_text(model_name, 200)}: "
        + _version("candidate", candidate.get("version"), candidate_url)
        + " against "
        + (_version("champion", champion.get("version"), champion_url) if champion else "no champion yet"),
        "",
        metrics_table(record, metric),
        "",
        f"**Evaluation**: {md_text(record.get('decision'), 20)}",
        "",
        *[f"- {md_text(reason)}" for reason in record.get("reasons") or []],
        "",
    ]
    if plan.get("forced"):
        lines += ["**Forced**: yes, the requester asks to promote whatever the evaluation's verdict", ""]
    if why_approval:
        lines += [f"**Approval needed**: {md_text(why_approval)}", ""]
    lines.append(
        f"**Requested by**: {md_text(requested_by, 100) if requested_by else 'a schedule or an event'}"
    )
    lines += ["", "**Reason given with the run** (quoted as typed):", ""]
    lines.append(f"> {md_text(run_reason)}" if run_reason else "> (none)")
    return "\n".join(lines) + "\n"
