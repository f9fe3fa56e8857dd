"""The batch canary in real Airflow: the reference DAG ``dags/mlops_deploy.py``, run day by day
with ``dag.test()`` against a real MLflow server, on real parquet files.

One story, in order: a better candidate starts at 10 %, is stepped to 50 % and completes (it
becomes ``@champion``); a broken candidate starts, and the first analysis with enough outcomes
rolls it back; then ``@champion`` is rolled back and the next run syncs the target. Along the way:
every prediction carries its version and arm, the same customers stay on the same arm across
runs of one rollout, and the registry's history holds every move.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core import registry
from airflow_mlops.core.canary import CANARY, CONTROL, bucket, threshold
from tests.helpers.fixtures import REPO

pytestmark = pytest.mark.integration

FEATURES = ["x1", "x2"]
ROWS = 2000
DAG_FILE = REPO / "dags" / "mlops_deploy.py"


def day_frame(day: int) -> pd.DataFrame:
    """The same 2,000 customers every day, with that day's features and outcomes."""
    rng = np.random.default_rng(day)
    x1, x2 = rng.normal(size=ROWS), rng.normal(size=ROWS)
    label = (1.5 * x1 - 1.0 * x2 + rng.normal(scale=0.6, size=ROWS) > 0).astype(int)
    ids = [f"C{i:05d}" for i in range(ROWS)]
    return pd.DataFrame({"customer_id": ids, "x1": x1, "x2": x2, "label": label})


def register(name: str, estimator, features=FEATURES) -> str:
    import mlflow
    import mlflow.sklearn

    train = day_frame(100)
    estimator.fit(train[features], train["label"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            estimator, name="model", pip_requirements=["scikit-learn"], registered_model_name=name
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="module")
def story(mlflow_server, airflow_home, tmp_path_factory):
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from airflow_mlops.hooks.mlflow import MlflowHook

    name = f"deploy-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("deploy-data")
    (root / "scoring").mkdir()
    hook = MlflowHook()
    with hook.session() as client:
        weak = register(name, LogisticRegression(), ["x2"])  # half the signal
        strong = register(name, LogisticRegression())
        broken = register(name, DummyClassifier(strategy="constant", constant=1))
        registry.promote(client, name, weak, "champion", origin={"run_id": "setup", "task_id": "v1"})
        registry.promote(client, name, strong, "challenger", origin={"run_id": "setup", "task_id": "c1"})
    env = {
        "MLOPS_MODEL_NAME": name,
        "MLOPS_DATA_ROOT": str(root),
        "MLOPS_CANARY_BAKE_MINUTES": "0",
        "MLOPS_CANARY_MIN_SAMPLES": "150",
        "MLOPS_DEPLOY_TARGET": "batch",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runs = Runs(name, root, hook)
    yield runs, {"weak": weak, "strong": strong, "broken": broken}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class Runs:
    def __init__(self, name: str, root: Path, hook) -> None:
        self.name, self.root, self.hook = name, root, hook
        self.day = 0

    def next_day(self, conf: dict | None = None):
        """Write the day's scoring data, run the reference DAG on that day, read what it did."""
        from airflow.dag_processing.dagbag import DagBag

        self.day += 1
        date = dt.datetime(2025, 6, self.day, 7, tzinfo=dt.timezone.utc)
        day_frame(self.day).to_parquet(
            self.root / "scoring" / f"{date.date().isoformat()}.parquet", index=False
        )
        folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        path = folder / "mlops_deploy.py"
        path.write_text(DAG_FILE.read_text())
        bag = DagBag(str(path))
        assert not bag.import_errors, bag.import_errors
        dr = bag.get_dag("mlops_deploy").test(logical_date=date, run_conf=conf)
        states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
        return Day(self, dr, states, date.date().isoformat())

    def model(self):
        with self.hook.session() as client:
            return client.get_registered_model(self.name)

    def aliases(self) -> dict[str, str]:
        return {alias: str(version) for alias, version in self.model().aliases.items()}


class Day:
    def __init__(self, runs: Runs, dr, states: dict, date: str) -> None:
        self.runs, self.dr, self.states, self.date = runs, dr, states, date

    def xcom(self, task_id: str):
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(
                    run_id=self.dr.run_id, key="return_value", task_ids=task_id, dag_ids="mlops_deploy"
                )
            ).first()
            return None if row is None else XComModel.deserialize_value(row)

    def predictions(self) -> pd.DataFrame:
        return pd.read_parquet(self.runs.root / "predictions" / f"{self.date}.parquet")


def test_a_canary_holds_is_stepped_up_and_becomes_champion_then_a_broken_one_is_rolled_back(story):
    runs, v = story

    # day 1: the candidate starts at 10 %, nothing to analyse yet, the day is scored
    day1 = runs.next_day()
    assert day1.states["start_canary"] == "success", day1.states
    assert day1.xcom("analyse")["verdict"] == "wait"
    assert day1.states["score"] == "success"
    assert day1.states["step"] == day1.states["abort"] == day1.states["promote"] == "skipped"
    first = day1.predictions()
    assert list(first.columns) == ["customer_id", "prediction", "model_version", "arm"]
    assert set(zip(first["arm"], first["model_version"], strict=True)) == {
        (CONTROL, v["weak"]),
        (CANARY, v["strong"]),
    }
    rollout = day1.xcom("start_canary")["rollout"]
    expected_canary = {i for i in first["customer_id"] if bucket(i, rollout) < threshold(10)}
    assert set(first.loc[first["arm"] == CANARY, "customer_id"]) == expected_canary
    assert 0.07 < len(expected_canary) / len(first) < 0.13
    assert runs.aliases() == {
        "champion": v["weak"],
        "challenger": v["strong"],
        "canary": v["strong"],
    }

    # day 2: the analysis of day 1 holds: 50 %; yesterday's canary customers are still on it
    day2 = runs.next_day()
    analysis = day2.xcom("analyse")
    assert analysis["verdict"] == "continue", analysis["reasons"]
    assert analysis["canary"]["n"] >= 150 and analysis["control"]["n"] >= 150
    assert day2.states["step"] == "success" and day2.xcom("step")["share"] == 50.0
    second = day2.predictions()
    on_canary = set(second.loc[second["arm"] == CANARY, "customer_id"])
    assert expected_canary <= on_canary  # a step up only moves control customers over
    assert 0.45 < len(on_canary) / len(second) < 0.55
    assert day2.states["start_canary"] == "skipped"  # the same candidate is already in canary

    # day 3: it holds again: it takes all traffic and becomes the champion
    day3 = runs.next_day()
    assert day3.xcom("analyse")["verdict"] == "promote"
    assert day3.states["promote"] == "success" and day3.states["recover"] == "skipped"
    assert set(day3.predictions()["model_version"]) == {v["strong"]}
    assert runs.aliases() == {"champion": v["strong"], "challenger": v["strong"]}

    # a broken candidate is promoted to @challenger (e.g. forced past its evaluation)
    with runs.hook.session() as client:
        registry.promote(
            client, runs.name, v["broken"], "challenger", origin={"run_id": "force", "task_id": "c2"}
        )
    day4 = runs.next_day()
    assert day4.states["start_canary"] == "success"
    assert set(day4.predictions()["model_version"]) == {v["strong"], v["broken"]}

    # day 5: the first analysis with enough outcomes rolls it back; today's batch is all champion
    day5 = runs.next_day()
    analysis = day5.xcom("analyse")
    assert analysis["verdict"] == "rollback", analysis["reasons"]
    assert any("worse than the control" in r for r in analysis["reasons"])
    assert day5.states["abort"] == "success" and day5.states["step"] == "skipped"
    assert set(day5.predictions()["model_version"]) == {v["strong"]}
    model = runs.model()
    assert runs.aliases() == {"champion": v["strong"], "challenger": v["broken"]}
    events = registry.read_history(model.tags, "canary").done
    assert [(e.action, e.version, e.share) for e in events] == [
        ("canary_start", v["strong"], 10.0),
        ("canary_step", v["strong"], 50.0),
        ("canary_complete", v["strong"], 100.0),
        ("canary_start", v["broken"], 10.0),
        ("canary_abort", v["broken"], 0.0),
    ]
    assert "worse than the control" in events[-1].reason
    champion = registry.read_history(model.tags, "champion").done
    assert [(e.action, e.version) for e in champion] == [("promote", v["weak"]), ("promote", v["strong"])]

    # day 6: no canary and no new candidate: nothing moves
    day6 = runs.next_day()
    assert day6.states["start_canary"] == "skipped"
    assert day6.xcom("analyse")["active"] is False
    assert set(day6.predictions()["model_version"]) == {v["strong"]}

    # a run whose conf tries to pick the target and an identity is refused before anything moves
    before = runs.aliases()
    day7 = runs.next_day({"target": "sagemaker", "execution_role_arn": "arn:aws:iam::1:role/Admin"})
    assert day7.states["check_form"] == "failed"
    assert day7.states["start_canary"] == day7.states["analyse"] == "upstream_failed"
    # the moves never ran, so recover (ONE_FAILED) has nothing to abort: skipped, not retried
    assert day7.states["recover"] == "skipped", day7.states
    assert runs.aliases() == before

    # @champion is rolled back (what mlops_rollback moves): the finished rollout's traffic goes
    # back with it, since the batch target serves what the registry says; nothing else moves
    with runs.hook.session() as client:
        registry.rollback(
            client, runs.name, "champion", reason="test", origin={"run_id": "rollback", "task_id": "r1"}
        )
    day8 = runs.next_day()
    assert runs.aliases()["champion"] == v["weak"]
    assert day8.states["start_canary"] == "skipped" and day8.states["score"] == "success", day8.states
    assert set(day8.predictions()["model_version"]) == {v["weak"]}
    assert set(day8.predictions()["arm"]) == {CONTROL}
    assert [e.action for e in registry.read_history(runs.model().tags, "canary").done][-1] == "canary_abort"


def test_before_the_first_training_the_run_skips_and_says_why(
    mlflow_server, airflow_home, tmp_path, capfd, monkeypatch
):
    """A fresh install (``make airflow`` before any training): the daily run has nothing to roll
    out or score. It ends without a failed task, and its log says what it waits for."""
    from airflow_mlops.hooks.mlflow import MlflowHook

    name = f"fresh-{uuid.uuid4().hex[:8]}"
    (tmp_path / "scoring").mkdir()
    for key, value in {
        "MLOPS_MODEL_NAME": name,
        "MLOPS_DATA_ROOT": str(tmp_path),
        "MLOPS_DEPLOY_TARGET": "batch",
    }.items():
        monkeypatch.setenv(key, value)
    day = Runs(name, tmp_path, MlflowHook()).next_day()
    assert day.dr.state == "success", day.states
    ran = {"check_form", "decide_rollout"}
    assert {t for t, state in day.states.items() if state != "skipped"} == ran, day.states
    assert all(day.states[t] == "success" for t in ran), day.states
    log = capfd.readouterr()
    reason = f"{name} is not registered in {MlflowHook().registry_uri} yet: nothing to roll out or score"
    assert (log.out + log.err).count(reason) == 3  # start_canary, analyse, score
    predictions = tmp_path / "predictions"
    assert not predictions.exists() or not any(predictions.iterdir())  # nothing was scored
