from __future__ import annotations

import json

import pytest

from airflow_mlops.core.evaluation import decide


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
