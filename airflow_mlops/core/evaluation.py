"""The promotion decision: promote or reject a candidate against the champion, what a reject does,
and what a promotion then moves.

No Airflow, no MLflow: metrics and records in, records out, so every rule can be read and tested
in one place. ``EvaluateModelOperator`` computes the metrics, calls :func:`decide` and acts on
:func:`reject_outcome`; the reference DAG turns the record into a :func:`promotion_plan` for
``PromoteModelOperator``, with :func:`trigger_reason` as the default reason.

The decision record (``docs/operators/evaluation.md``)::

    {"decision": "promote" | "reject",
     "reasons": ["...", ...],                       # every check, in words, in order
     "candidate": {"version": "7", "metrics": {...}},
     "champion": {"version": "5", "metrics": {...}} | None}

Rules of :func:`decide`, in order:

1. every absolute threshold must hold for the candidate (``{"accuracy": 0.8}`` means accuracy
   >= 0.8; for an error metric such as ``rmse`` the threshold is a ceiling: rmse <= value);
2. with a champion: the candidate's ``improvement`` on ``metric`` (candidate minus champion, sign
   flipped when lower is better) must be greater than ``min_improvement``; a tie keeps the
   champion. A negative ``min_improvement`` tolerates a small regression;
3. without a champion: ``bootstrap="promote"`` promotes the first candidate (thresholds still
   apply); ``bootstrap="fail"`` rejects it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.metrics import check_bound, check_metric
from airflow_mlops.core.metrics import greater_is_better as default_direction
from airflow_mlops.core.registry import NO_HOLDER

if TYPE_CHECKING:
    from collections.abc import Iterable

PROMOTE = "promote"
REJECT = "reject"
BOOTSTRAP_CHOICES = ("promote", "fail")
ON_REJECT_CHOICES = ("skip", "fail")


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def check_thresholds(thresholds: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate ``{metric: bound}``: known metrics, finite bounds inside each metric's range.

    A NaN bound would reject every candidate and a negative accuracy floor would pass every one,
    both silently: they are refused.

    :raises ValueError: naming the bad entry (``thresholds['accuracy'] ...``).
    """
    out: dict[str, float] = {}
    for metric, bound in (thresholds or {}).items():
        out[metric] = check_bound(metric, bound, f"thresholds[{metric!r}]")
    return out


def decide(
    *,
    metric: str,
    candidate_version: str,
    candidate_metrics: dict[str, float],
    champion_version: str | None,
    champion_metrics: dict[str, float] | None,
    greater_is_better: bool | None = None,
    min_improvement: float = 0.0,
    thresholds: dict[str, float] | None = None,
    bootstrap: str = "promote",
    alias: str = "champion",
    champion_error: str | None = None,
) -> dict[str, Any]:
    """Decide whether ``candidate`` should replace the current holder of ``alias``.

    :param metric: the deciding metric.
    :param candidate_metrics: the candidate's scores; must include ``metric`` and every threshold.
    :param champion_version: version holding ``alias`` now, or None when there is none.
    :param champion_metrics: the champion's scores on the same data (with a champion).
    :param greater_is_better: direction of ``metric`` (None: the metric's natural direction).
    :param min_improvement: margin the candidate must beat the champion by (in metric units).
    :param thresholds: absolute bounds ``{metric: value}`` in each metric's own direction.
    :param bootstrap: ``"promote"`` or ``"fail"`` when there is no champion.
    :param alias: name of the alias, for the wording of the reasons.
    :param champion_error: why the champion could not be scored (it then sets no benchmark).
    :return: the decision record.
    """
    check_metric(metric)
    if bootstrap not in BOOTSTRAP_CHOICES:
        raise ValueError(f"bootstrap must be one of {BOOTSTRAP_CHOICES}, got {bootstrap!r}")
    bounds = check_thresholds(thresholds)
    gib = default_direction(metric) if greater_is_better is None else bool(greater_is_better)
    for name in [metric, *bounds]:
        if name not in candidate_metrics:
            raise ValueError(f"candidate metrics lack {name!r}: {sorted(candidate_metrics)}")

    reasons: list[str] = []
    ok = True
    for name, bound in bounds.items():
        value = candidate_metrics[name]
        higher = default_direction(name) if name != metric else gib
        passed = _finite(value) and (value >= bound if higher else value <= bound)
        if passed:
            reasons.append(
                f"candidate {name} {_fmt(value)} meets the {'floor' if higher else 'ceiling'} {_fmt(bound)}"
            )
        else:
            ok = False
            reasons.append(
                f"candidate {name} {_fmt(value)} is {'below the floor' if higher else 'above the ceiling'} "
                f"{_fmt(bound)}"
            )

    cand = candidate_metrics[metric]
    if not _finite(cand):
        ok = False
        reasons.append(f"candidate {metric} is {cand}: not a number, cannot be compared")

    if champion_version is None:
        if bootstrap == "promote":
            reasons.append(f"no model holds @{alias}: bootstrap='promote' lets the first candidate through")
        else:
            ok = False
            reasons.append(f"no model holds @{alias} and bootstrap='fail': set a champion first")
    elif _finite(cand):
        champ = (champion_metrics or {}).get(metric)
        if champ is None or not _finite(champ):
            # a champion that cannot be scored on today's data is no benchmark: a valid candidate wins
            why = champion_error or f"its {metric} is {champ}"
            reasons.append(
                f"champion v{champion_version} cannot be scored on this data ({why}); the candidate replaces it"
            )
        else:
            improvement = (cand - champ) if gib else (champ - cand)
            direction = "higher" if gib else "lower"
            if improvement > min_improvement:
                reasons.append(
                    f"candidate {metric} {_fmt(cand)} beats champion v{champion_version} {_fmt(champ)} "
                    f"by {_fmt(improvement)} ({direction} is better; required more than {_fmt(min_improvement)})"
                )
            else:
                ok = False
                reasons.append(
                    f"candidate {metric} {_fmt(cand)} does not beat champion v{champion_version} {_fmt(champ)} "
                    f"by more than {_fmt(min_improvement)} (improvement {_fmt(improvement)}, {direction} is better)"
                )

    return {
        "decision": PROMOTE if ok else REJECT,
        "reasons": reasons,
        "candidate": {"version": str(candidate_version), "metrics": _json_safe(candidate_metrics)},
        "champion": (
            None
            if champion_version is None
            else {"version": str(champion_version), "metrics": _json_safe(champion_metrics or {})}
        ),
    }


def _json_safe(metrics: dict[str, Any]) -> dict[str, float | None]:
    """NaN/inf are not JSON: the record (XCom, tags) carries None for them."""
    return {k: (float(v) if _finite(v) else None) for k, v in metrics.items()}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def reject_outcome(record: Mapping[str, Any], *, bootstrap: str, on_reject: str) -> str:
    """What a rejected candidate does to the evaluation task: ``"skip"`` or ``"fail"``.

    ``on_reject`` decides, except when no version held the alias and ``bootstrap="fail"``: then
    the task fails whatever ``on_reject`` says. A missing champion is a set-up problem, not a bad
    candidate, and a skip would hide it.

    :param record: a decision record of :func:`decide` whose decision is ``"reject"``.
    :raises ValueError: a bad ``bootstrap``/``on_reject``, or a record that is not a reject.
    """
    if bootstrap not in BOOTSTRAP_CHOICES:
        raise ValueError(f"bootstrap must be one of {BOOTSTRAP_CHOICES}, got {bootstrap!r}")
    if on_reject not in ON_REJECT_CHOICES:
        raise ValueError(f"on_reject must be one of {ON_REJECT_CHOICES}, got {on_reject!r}")
    if record.get("decision") != REJECT:
        raise ValueError(f"only a rejected candidate has a reject outcome, got {record.get('decision')!r}")
    if record.get("champion") is None and bootstrap == "fail":
        return "fail"
    return on_reject


def promotion_plan(
    record: Mapping[str, Any],
    *,
    reason: str,
    force: bool = False,
    approval_required: bool = False,
) -> dict[str, Any] | None:
    """The promotion that follows an evaluation, or None when the candidate is not promoted.

    The verdict is followed unless ``force`` is set: then the candidate is promoted over a reject,
    and the plan says so twice, as ``forced`` and at the end of the reason
    (``"<reason> [forced; evaluation verdict: reject]"``), so the promotion history shows it.
    ``force`` overrides the verdict only: the quality gates and the evaluation still ran.

    :param record: the decision record of :func:`decide` (the evaluation task's XCom).
    :param reason: why this promotion, as recorded in the history (e.g. the run's reason, else
        :func:`trigger_reason`).
    :param force: promote whatever the verdict.
    :param approval_required: whether a human must approve the move first. The caller decides it
        (from its settings and the run's form); the plan carries it so that the approval branch
        and the promotion follow one answer.
    :return: ``{"version", "expected_current", "forced", "reason", "approval_required"}``:
        ``version`` is the candidate; ``expected_current`` the champion the evaluation compared
        with (``"none"`` when there was none), against which the promotion is a compare-and-set.
        None when the verdict is reject and nothing forces it.
    :raises ValueError: ``record`` is not a decision record.
    """
    verdict = record.get("decision") if isinstance(record, Mapping) else None
    candidate = (record.get("candidate") or {}).get("version") if verdict else None
    if verdict not in (PROMOTE, REJECT) or not candidate:
        raise ValueError(f"not a decision record (decision and candidate version expected): {record!r}")
    if verdict != PROMOTE and not force:
        return None
    champion = (record.get("champion") or {}).get("version")
    return {
        "version": str(candidate),
        "expected_current": str(champion) if champion else NO_HOLDER,
        "forced": bool(force),
        "reason": f"{reason} [forced; evaluation verdict: {verdict}]" if force else reason,
        "approval_required": bool(approval_required),
    }


def plan_summary(record: Mapping[str, Any], plan: Mapping[str, Any] | None) -> str:
    """The promotion decision in one sentence, for the task log."""
    candidate = record["candidate"]["version"]
    champion = (record.get("champion") or {}).get("version")
    if plan is None:
        holder = f"the champion stays v{champion}" if champion else "there is still no champion"
        return f"candidate v{candidate} was rejected by the evaluation; {holder}"
    return "promoting v{} over {}{}: {}{}".format(
        plan["version"],
        f"v{champion}" if champion else "no champion",
        " (FORCED over a reject)" if plan["forced"] and record["decision"] != PROMOTE else "",
        plan["reason"],
        ", after a human approval" if plan.get("approval_required") else "",
    )


def event_reason(extra: Mapping[str, Any] | None) -> str | None:
    """What one monitoring event says, in words.

    ``"drift in 62% of columns"`` for a drift event (``drift_share`` in its extra),
    ``"accuracy fell to 0.612"`` for a performance event (``metric``, ``value``); None for any
    other event, or one whose numbers are not numbers.
    """
    extra = extra or {}
    try:
        if "drift_share" in extra:
            return f"drift in {float(extra['drift_share']):.0%} of columns"
        if "value" in extra:
            return f"{extra.get('metric') or 'metric'} fell to {float(extra['value']):.3f}"
    except (TypeError, ValueError):
        return None
    return None


def trigger_reason(
    events: Mapping[str, Iterable[Mapping[str, Any] | None]],
    run_type: Any = None,
    *,
    scheduled: str = "scheduled retraining",
) -> str:
    """Why a retraining run started, in words: the default reason of its promotion.

    :param events: the events that triggered the run, ``{asset URI: [event extra, ...]}``.
    :param run_type: the run's type (``"scheduled"``, ``"manual"``, ``"asset_triggered"`` ... or
        Airflow's ``DagRunType``).
    :param scheduled: the words for a run the schedule started.
    :return: ``"drift in 62% of columns (x-mlops://drift/churn); ..."`` for the events, else
        ``scheduled`` for a scheduled run, else ``"manual retraining"``.
    """
    parts = []
    for uri, extras in (events or {}).items():
        for extra in extras:
            said = event_reason(extra)
            parts.append(f"{said} ({uri})" if said else f"event on {uri}")
    if parts:
        return "; ".join(parts)
    # Airflow's DagRunType is a str enum whose str() is "DagRunType.SCHEDULED": compare its value
    kind = str(getattr(run_type, "value", run_type) or "")
    return scheduled if kind == "scheduled" else "manual retraining"
