"""The embedded demo, end to end: the reference DAGs run the whole loop with ``dag.test()``.

One run of ``include/demo/run.py`` (the README's main command) in a fresh Airflow home, then two
more runs of ``mlops_continuous_training`` in the same home for the paths the story does not take:
a rejected candidate, and the same candidate forced through, which waits for a human approval
(given here the way the Airflow API records one, by ``tests.helpers.hitl.Responder``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
RUN = REPO / "include" / "demo" / "run.py"


def _env() -> dict[str, str]:
    """The user's environment without this test session's Airflow/MLflow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_", "MLOPS_"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> SimpleNamespace:
    home = tmp_path_factory.mktemp("demo-home")
    proc = subprocess.run(
        [sys.executable, str(RUN), "--home", str(home)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=900,
    )
    assert proc.returncode == 0, f"demo failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    summary = json.loads((home / "demo" / "summary.json").read_text())
    return SimpleNamespace(home=home, stdout=proc.stdout, summary=summary)


def test_the_story_is_printed_with_its_numbers(demo):
    out = demo.stdout
    for step in ("[1]", "[2]", "[3]", "[4]", "[5]"):
        assert step in out
    assert "The champion day by day" in out
    assert "drift share 0.00" in out
    assert f"After the rollback @champion is v{demo.summary['first_champion']} again." in out
    assert "drift_report.html" in out and "validation.html" in out
    for kind in ("quality", "drift"):
        assert demo.summary["reports"][kind], kind
        for path in demo.summary["reports"][kind]:
            assert Path(path).is_file()


def test_drift_is_detected_only_in_the_drifted_window(demo):
    s = demo.summary
    monitored = [w for w in s["windows"] if w["monitored"]]
    assert [w["drifted"] for w in monitored] == [False, True]
    clean, drifted = monitored
    assert clean["drift_detected"] is False and clean["degraded"] is False
    assert clean["drift_share"] < 0.2
    assert drifted["drift_detected"] is True
    assert drifted["drift_share"] >= 0.5
    assert drifted["date"] == s["drift_date"]

    runs = {r["step"]: r for r in s["runs"]}
    monitor_runs = [r for r in s["runs"] if r["dag_id"] == "mlops_drift_monitor"]
    assert [r["asset_events"] for r in monitor_runs][0] == []  # the clean window emits nothing
    assert "x-mlops://drift/churn" in monitor_runs[1]["asset_events"]
    # one retraining, and only after the drifted window
    training = [r["step"] for r in s["runs"] if r["dag_id"] == "mlops_continuous_training"]
    # (then the deployment act's deliberately worse candidate, forced: not a monitoring trigger)
    assert training == ["1-initial-training", "4-retraining", "5-forced-candidate"]
    assert runs["2-monitor-" + clean["date"]]["tasks"]["data_drift"] == "skipped"
    assert runs["3-monitor-" + drifted["date"]]["tasks"]["data_drift"] == "success"


def test_the_promoted_model_beats_the_old_champion_after_the_drift(demo):
    s = demo.summary
    old, new = s["first_champion"], s["retrained_version"]
    assert new != old
    record = s["evaluation"]
    assert record["decision"] == "promote"
    assert record["champion"]["version"] == old
    assert record["candidate"]["metrics"]["accuracy"] > record["champion"]["metrics"]["accuracy"] + 0.2
    post = s["post_drift_accuracy"]
    assert post[new] > post[old] + 0.2
    assert post[new] > 0.75
    # before the drift the first champion was good
    pre = [w["accuracy"] for w in s["windows"] if not w["drifted"]]
    assert min(pre) > 0.75


def test_the_rollback_restored_the_previous_version(demo):
    s = demo.summary
    assert s["champion_after_rollback"] == s["first_champion"]
    assert s["rollback"]["version"] == s["first_champion"]
    assert s["rollback"]["previous_version"] == s["retrained_version"]
    actions = [(e["action"], str(e["version"])) for e in s["history"]]
    assert actions == [
        ("promote", s["first_champion"]),
        ("promote", s["retrained_version"]),
        ("rollback", s["first_champion"]),
    ]


EXTRA_RUNS = textwrap.dedent(
    """
    import importlib.util, json, sys
    from pathlib import Path
    from tests.helpers.hitl import Responder
    spec = importlib.util.spec_from_file_location("demo_run", sys.argv[1])
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    demo = run.Demo(Path(sys.argv[2]))
    demo.activate()
    manifest = json.loads((demo.data_root / "manifest.json").read_text())
    drifted = next(w for w in manifest["windows"] if w["drifted"])
    # trained on post-drift data, judged on pre-drift data: the evaluation rejects it
    conf = {"train_data": drifted["path"], "eval_data": manifest["eval"], "reason": "test"}
    rejected = demo.run_dag("6-rejected", "mlops_continuous_training", "2025-04-01", conf)
    after_reject = demo.champion_version()
    with Responder("mlops_continuous_training", "request_approval", user_name="lead") as responder:
        forced = demo.run_dag(
            "7-forced", "mlops_continuous_training", "2025-04-02", {**conf, "force_promote": True}
        )
    print("EXTRA " + json.dumps({
        "rejected": rejected, "after_reject": after_reject, "forced": forced,
        "after_forced": demo.champion_version(), "history": demo.history(),
        "approval_body": responder.body,
    }, default=str))
    """
)


def test_a_rejected_candidate_is_not_promoted_unless_forced(demo):
    proc = subprocess.run(
        [sys.executable, "-c", EXTRA_RUNS, str(RUN), str(demo.home)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("EXTRA "))
    extra = json.loads(line[len("EXTRA ") :])
    champion = demo.summary["champion_after_rollback"]

    rejected = extra["rejected"]
    record = rejected["xcom"]["evaluate.return_value"]
    assert record["decision"] == "reject"
    assert record["champion"]["version"] == champion
    assert rejected["tasks"]["evaluate"] == "skipped"
    assert rejected["tasks"]["decide_promotion"] == "success"
    assert rejected["tasks"]["promote"] == "skipped"
    assert extra["after_reject"] == champion

    forced = extra["forced"]
    record = forced["xcom"]["evaluate.return_value"]
    assert record["decision"] == "reject"  # the verdict stands in the record ...
    assert forced["tasks"]["promote"] == "success"  # ... but the promotion went through,
    assert forced["tasks"]["request_approval"] == "success"  # after a human approved it
    assert forced["tasks"]["no_approval_needed"] == "skipped"
    assert "**Evaluation**: reject" in extra["approval_body"] and "**Forced**: yes" in extra["approval_body"]
    new = str(forced["xcom"]["train.return_value"]["model_version"])
    assert forced["xcom"]["promote.return_value"]["version"] == new
    assert forced["xcom"]["promote.return_value"]["previous_version"] == champion
    assert extra["after_forced"] == new
    last = extra["history"][-1]
    assert last["action"] == "promote" and str(last["version"]) == new
    assert last["forced"] is True and last["approved_by"] == "lead"
    assert "forced" in last["reason"] and "reject" in last["reason"]


def test_the_deployment_act_ramps_the_retrained_version_and_rolls_back_the_worse_one(demo):
    s, out = demo.summary, demo.stdout
    new, forced = s["retrained_version"], s["deployment"]["forced"]
    assert "mlops_deploy (batch target, daily)" in out
    assert f"canary started: v{new} on 10 % of the customers" in out
    assert "The canary rollouts day by day" in out and "@canary history" in out
    # the worse candidate was rejected by its evaluation and forced to @challenger
    assert forced["decision"] == "reject" and forced["challenger"] == forced["version"]
    assert forced["accuracy"] < forced["champion_accuracy"]

    days = s["deployment"]["days"]
    moves = [m for day in days for m in day["moves"]]
    assert moves == ["start_canary", "promote", "start_canary", "abort"]  # the demo's plan: 10,100
    started = next(d for d in days if "start_canary" in d["moves"])
    assert started["arms"]["canary"]["version"] == new
    assert (
        0.07
        < started["arms"]["canary"]["rows"]
        / (started["arms"]["control"]["rows"] + started["arms"]["canary"]["rows"])
        < 0.13
    )
    rolled_back = next(d for d in days if "abort" in d["moves"])
    assert rolled_back["verdict"] == "rollback"
    assert any("worse than the control" in r for r in rolled_back["reasons"])
    # traffic returned to the champion at once: that day's batch is all champion
    assert set(rolled_back["arms"]) == {"control"} and rolled_back["arms"]["control"]["version"] == new

    events = [
        (e["action"], str(e["version"]), e["share"]) for e in s["canary_history"] if e["status"] == "done"
    ]
    assert events == [
        ("canary_start", new, 10.0),
        ("canary_complete", new, 100.0),
        ("canary_start", forced["version"], 10.0),
        ("canary_abort", forced["version"], 0.0),
    ]
    # the champion moved once by the canary, never to the worse candidate
    assert [str(e["version"]) for e in s["history"] if e["action"] == "promote"] == [s["first_champion"], new]
