from __future__ import annotations

import json

import pytest

from airflow_mlops.core.evaluation import (
    check_thresholds,
    decide,
    event_reason,
    plan_summary,
    promotion_plan,
    reject_outcome,
    trigger_reason,
)


def _decide(**kw):
    args = dict(
        metric="accuracy",
        candidate_version="2",
        candidate_metrics={"accuracy": 0.85, "f1": 0.8},
        champion_version="1",
        champion_metrics={"accuracy": 0.80, "f1": 0.7},
    )
    args.update(kw)
    return decide(**args)


def test_better_candidate_is_promoted_and_record_has_design_shape():
    record = _decide()
    assert set(record) == {"decision", "reasons", "candidate", "champion"}
    assert record["decision"] == "promote"
    assert record["candidate"] == {"version": "2", "metrics": {"accuracy": 0.85, "f1": 0.8}}
    assert record["champion"] == {"version": "1", "metrics": {"accuracy": 0.80, "f1": 0.7}}
    assert "beats champion v1" in record["reasons"][-1]
    json.dumps(record, allow_nan=False)


@pytest.mark.parametrize(
    ("candidate", "champion", "min_improvement", "decision"),
    [
        (0.85, 0.80, 0.0, "promote"),
        (0.80, 0.80, 0.0, "reject"),  # a tie keeps the champion
        (0.79, 0.80, 0.0, "reject"),
        (0.82, 0.80, 0.05, "reject"),  # better, but not by the margin
        (0.86, 0.80, 0.05, "promote"),
        (0.79, 0.80, -0.02, "promote"),  # a tolerated small regression
    ],
)
def test_improvement_rule(candidate, champion, min_improvement, decision):
    record = _decide(
        candidate_metrics={"accuracy": candidate},
        champion_metrics={"accuracy": champion},
        min_improvement=min_improvement,
    )
    assert record["decision"] == decision, record["reasons"]


def test_lower_is_better_metric_uses_its_direction_by_default():
    args = dict(metric="rmse", champion_version="1")
    better = decide(
        **args, candidate_version="2", candidate_metrics={"rmse": 1.0}, champion_metrics={"rmse": 2.0}
    )
    worse = decide(
        **args, candidate_version="2", candidate_metrics={"rmse": 3.0}, champion_metrics={"rmse": 2.0}
    )
    assert better["decision"] == "promote"
    assert worse["decision"] == "reject"
    assert "lower is better" in worse["reasons"][-1]
    flipped = decide(
        **args,
        candidate_version="2",
        candidate_metrics={"rmse": 3.0},
        champion_metrics={"rmse": 2.0},
        greater_is_better=True,
    )
    assert flipped["decision"] == "promote"


def test_floor_rejects_even_a_better_candidate():
    record = _decide(thresholds={"f1": 0.9})
    assert record["decision"] == "reject"
    assert record["reasons"][0] == "candidate f1 0.8000 is below the floor 0.9000"
    assert "beats champion" in record["reasons"][1]


def test_error_threshold_is_a_ceiling():
    record = decide(
        metric="r2",
        candidate_version="3",
        candidate_metrics={"r2": 0.9, "rmse": 1.5},
        champion_version=None,
        champion_metrics=None,
        thresholds={"rmse": 1.0},
    )
    assert record["decision"] == "reject"
    assert "above the ceiling 1.0000" in record["reasons"][0]


@pytest.mark.parametrize(("bootstrap", "decision"), [("promote", "promote"), ("fail", "reject")])
def test_no_champion_bootstrap(bootstrap, decision):
    record = _decide(champion_version=None, champion_metrics=None, bootstrap=bootstrap)
    assert record["decision"] == decision
    assert record["champion"] is None
    assert f"bootstrap='{bootstrap}'" in record["reasons"][-1]


def test_bootstrap_promote_still_applies_floors():
    record = _decide(champion_version=None, champion_metrics=None, thresholds={"accuracy": 0.9})
    assert record["decision"] == "reject"


def test_unscorable_champion_sets_no_benchmark_and_nan_is_not_json():
    record = _decide(champion_metrics={}, champion_error="lacks column x")
    assert record["decision"] == "promote"
    assert "lacks column x" in record["reasons"][-1]
    nan = _decide(candidate_metrics={"accuracy": float("nan")})
    assert nan["decision"] == "reject"
    assert nan["candidate"]["metrics"]["accuracy"] is None
    json.dumps(nan, allow_nan=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"metric": "auc"}, "unknown metric"),
        ({"bootstrap": "maybe"}, "bootstrap must be"),
        ({"thresholds": {"accuracy": "high"}}, "must be a number"),
        ({"thresholds": {"recall": 0.5}}, "lack 'recall'"),
    ],
)
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        _decide(**kw)


# --- thresholds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        ({"accuracy": float("nan")}, r"thresholds\['accuracy'\] must be a finite number, got nan"),
        ({"accuracy": "nan"}, r"thresholds\['accuracy'\] must be a finite number"),
        ({"accuracy": float("inf")}, r"thresholds\['accuracy'\] must be a finite number"),
        ({"accuracy": -5}, r"thresholds\['accuracy'\] must be between 0 and 1 .* got -5"),
        ({"roc_auc": 80}, r"thresholds\['roc_auc'\] must be between 0 and 1 .* got 80"),
        ({"rmse": -0.1}, r"thresholds\['rmse'\] must be 0 or more"),
        ({"r2": 1.5}, r"thresholds\['r2'\] must be 1 or less"),
        ({"accuracy": True}, r"thresholds\['accuracy'\] must be a number"),
        ({"auc": 0.8}, "unknown metric 'auc'"),
    ],
)
def test_thresholds_outside_what_the_metric_can_take_are_refused(thresholds, match):
    with pytest.raises(ValueError, match=match):
        check_thresholds(thresholds)


def test_thresholds_inside_the_range_are_floats():
    assert check_thresholds({"accuracy": "0.8", "r2": -0.5, "mae": 0}) == {
        "accuracy": 0.8,
        "r2": -0.5,
        "mae": 0.0,
    }


# --- what a reject does -------------------------------------------------------------------------


def _reject(champion: str | None = "1") -> dict:
    return _decide(
        candidate_metrics={"accuracy": 0.7},
        champion_version=champion,
        champion_metrics=None if champion is None else {"accuracy": 0.8},
        bootstrap="fail" if champion is None else "promote",
    )


@pytest.mark.parametrize(("on_reject", "outcome"), [("skip", "skip"), ("fail", "fail")])
def test_a_worse_candidate_follows_on_reject(on_reject, outcome):
    assert reject_outcome(_reject(), bootstrap="promote", on_reject=on_reject) == outcome


@pytest.mark.parametrize("on_reject", ["skip", "fail"])
def test_no_champion_with_bootstrap_fail_fails_whatever_on_reject_says(on_reject):
    assert reject_outcome(_reject(champion=None), bootstrap="fail", on_reject=on_reject) == "fail"


def test_bootstrap_fail_with_a_champion_follows_on_reject():
    assert reject_outcome(_reject(), bootstrap="fail", on_reject="skip") == "skip"


@pytest.mark.parametrize(
    ("record", "kw", "match"),
    [
        (None, {"on_reject": "ignore"}, "on_reject must be one of"),
        (None, {"bootstrap": "maybe"}, "bootstrap must be one of"),
        ({"decision": "promote"}, {}, "only a rejected candidate"),
    ],
)
def test_reject_outcome_refuses_bad_input(record, kw, match):
    args = {"bootstrap": "promote", "on_reject": "skip", **kw}
    with pytest.raises(ValueError, match=match):
        reject_outcome(record or _reject(), **args)


# --- the promotion plan -----------------------------------------------------------------------


def test_a_promote_verdict_plans_a_compare_and_set_against_the_evaluated_champion():
    assert promotion_plan(_decide(), reason="drift in 60% of columns") == {
        "version": "2",
        "expected_current": "1",
        "forced": False,
        "reason": "drift in 60% of columns",
        "approval_required": False,
    }


def test_a_reject_verdict_plans_nothing():
    assert promotion_plan(_reject(), reason="weekly retraining") is None


def test_force_promotes_over_a_reject_and_says_so_in_the_reason():
    plan = promotion_plan(_reject(), reason="manual retraining", force=True)
    assert plan["version"] == "2" and plan["expected_current"] == "1"
    assert plan["forced"] is True
    assert plan["reason"] == "manual retraining [forced; evaluation verdict: reject]"


def test_force_over_a_promote_verdict_is_still_recorded_as_forced():
    plan = promotion_plan(_decide(), reason="r", force=True)
    assert (plan["forced"], plan["reason"]) == (True, "r [forced; evaluation verdict: promote]")


def test_without_a_champion_the_promotion_expects_none():
    record = _decide(champion_version=None, champion_metrics=None)
    assert promotion_plan(record, reason="first")["expected_current"] == "none"


def test_the_plan_carries_the_approval_the_caller_requires():
    assert promotion_plan(_decide(), reason="r", approval_required=True)["approval_required"] is True


@pytest.mark.parametrize(
    "record", [None, {}, {"decision": "maybe"}, {"decision": "promote", "candidate": {}}]
)
def test_a_promotion_plan_needs_a_decision_record(record):
    with pytest.raises(ValueError, match="not a decision record"):
        promotion_plan(record, reason="r")


def test_plan_summary_of_a_forced_promotion_with_approval():
    record = _reject()
    plan = promotion_plan(record, reason="manual", force=True, approval_required=True)
    assert plan_summary(record, plan) == (
        "promoting v2 over v1 (FORCED over a reject): manual [forced; evaluation verdict: reject], "
        "after a human approval"
    )


def test_plan_summary_of_a_reject():
    assert plan_summary(_reject(), None) == (
        "candidate v2 was rejected by the evaluation; the champion stays v1"
    )


# --- the reason of a run --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"drift_share": 0.625, "drift_detected": True}, "drift in 62% of columns"),
        ({"metric": "accuracy", "value": 0.61234, "degraded": True}, "accuracy fell to 0.612"),
        ({"value": 0.5}, "metric fell to 0.500"),
        ({"drift_share": "a lot"}, None),
        ({"other": 1}, None),
        (None, None),
    ],
)
def test_event_reason(extra, words):
    assert event_reason(extra) == words


def test_trigger_reason_lists_every_event_with_its_asset():
    events = {
        "x-mlops://drift/churn": [{"drift_share": 0.5}],
        "x-mlops://performance/churn": [{"metric": "f1", "value": 0.4}],
        "s3://bucket/new-data": [{}],
    }
    assert trigger_reason(events, "asset_triggered") == (
        "drift in 50% of columns (x-mlops://drift/churn); f1 fell to 0.400 (x-mlops://performance/churn); "
        "event on s3://bucket/new-data"
    )


def test_trigger_reason_of_a_scheduled_run_reads_airflows_run_type_enum():
    from airflow.sdk.api.datamodels._generated import DagRunType

    assert str(DagRunType.SCHEDULED) != "scheduled"  # why trigger_reason compares the value
    assert trigger_reason({}, DagRunType.SCHEDULED, scheduled="weekly retraining") == "weekly retraining"


@pytest.mark.parametrize("run_type", ["manual", None, "backfill"])
def test_trigger_reason_of_any_other_run_is_manual(run_type):
    assert trigger_reason({}, run_type) == "manual retraining"
