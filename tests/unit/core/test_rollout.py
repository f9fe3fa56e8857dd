"""The registry's rollout moves on an in-memory registry: each move's events and aliases, the
compare-and-sets, idempotent retries, and a crash between any two registry calls of a move.

The registry here is a small dict-backed stand-in for ``MlflowClient`` (the calls the protocol
makes, with MLflow's error codes); the real server is exercised by
``tests/integration/deploy/test_batch.py``.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)

from airflow_mlops.core.canary import RolloutPlan, Traffic
from airflow_mlops.core.registry import RegistryConflict, RegistryStateError, read_history, rollout

NAME = "churn"
PLAN = RolloutPlan(steps="10,50,100", bake_seconds=0, min_samples=10)


class Crash(Exception):
    """The process died at this call."""


class Registry:
    """The MlflowClient calls of the alias protocol, in memory."""

    def __init__(self) -> None:
        self.models: dict[str, dict] = {}
        self.versions: dict[tuple[str, str], dict] = {}
        self.clock = itertools.count(1)
        self.calls = 0
        self.crash_at: int | None = None

    def _call(self) -> None:
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise Crash(f"killed at registry call {self.calls}")

    def _model(self, name: str) -> dict:
        if name not in self.models:
            raise MlflowException(f"model {name} not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return self.models[name]

    def create_registered_model(self, name, tags=None, description=None):
        self._call()
        if name in self.models:
            raise MlflowException(f"{name} exists", error_code=RESOURCE_ALREADY_EXISTS)
        self.models[name] = {"tags": dict(tags or {}), "aliases": {}, "created": next(self.clock)}

    def get_registered_model(self, name):
        self._call()
        m = self._model(name)
        return SimpleNamespace(
            name=name, tags=dict(m["tags"]), aliases=dict(m["aliases"]), creation_timestamp=m["created"]
        )

    def delete_registered_model(self, name):
        self._call()
        self._model(name)
        del self.models[name]

    def set_registered_model_tag(self, name, key, value):
        self._call()
        self._model(name)["tags"][key] = value

    def set_registered_model_alias(self, name, alias, version):
        self._call()
        self._version(name, str(version))
        self._model(name)["aliases"][alias] = str(version)

    def delete_registered_model_alias(self, name, alias):
        self._call()
        self._model(name)["aliases"].pop(alias, None)

    def _version(self, name, version):
        if (name, str(version)) not in self.versions:
            raise MlflowException(f"{name} v{version} not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return self.versions[(name, str(version))]

    def get_model_version(self, name, version):
        self._call()
        tags = self._version(name, version)
        return SimpleNamespace(name=name, version=str(version), tags=dict(tags))

    def get_model_version_by_alias(self, name, alias):
        self._call()
        version = self._model(name)["aliases"].get(alias)
        if version is None:
            raise MlflowException(f"alias {alias} not found", error_code=INVALID_PARAMETER_VALUE)
        return self.get_model_version(name, version)

    def set_model_version_tag(self, name, version, key, value):
        self._call()
        self._version(name, version)[key] = value

    # helpers of the tests
    def aliases(self) -> dict[str, str]:
        return dict(self.models[NAME]["aliases"])

    def events(self, alias: str = "canary"):
        return [(e.action, e.version, e.share) for e in read_history(self.models[NAME]["tags"], alias).done]


@pytest.fixture
def reg() -> Registry:
    r = Registry()
    r.models[NAME] = {"tags": {}, "aliases": {"champion": "1"}, "created": 0}
    for v in ("1", "2", "3"):
        r.versions[(NAME, v)] = {}
    return r


class Target:
    """Records every traffic state it is given."""

    def __init__(self) -> None:
        self.applied: list[Traffic] = []

    def __call__(self, traffic: Traffic) -> None:
        self.applied.append(traffic)


def origin(task: str, run: str = "r1") -> dict:
    return {"dag_id": "mlops_deploy", "run_id": run, "task_id": task, "map_index": -1}


def test_a_rollout_start_step_complete(reg):
    target = Target()
    started = rollout.start(
        reg, NAME, "2", plan=PLAN, expected_control="1", apply=target, origin=origin("start")
    )
    assert started.changed and started.result()["rollout"] == f"2-{started.event.seq}"
    assert reg.aliases() == {"champion": "1", "canary": "2"}
    state = rollout.rollout_state(reg, NAME)
    assert state.active and state.share == 10 and state.candidate == "2" and state.control == "1"
    assert state.plan == PLAN and state.rollout_id == started.result()["rollout"]

    rollout.step(reg, NAME, rollout=state.rollout_id, apply=target, origin=origin("step"), reason="held")
    done = rollout.complete(reg, NAME, rollout=state.rollout_id, apply=target, origin=origin("promote"))
    assert done.result()["traffic"] == Traffic("2").to_dict()
    assert reg.aliases() == {"champion": "2"}
    assert target.applied == [Traffic("1", "2", 10), Traffic("1", "2", 50), Traffic("2")]
    assert reg.events() == [
        ("canary_start", "2", 10.0),
        ("canary_step", "2", 50.0),
        ("canary_complete", "2", 100.0),
    ]
    champion = read_history(reg.models[NAME]["tags"], "champion").done
    assert [(e.action, e.version, e.previous_version) for e in champion] == [("promote", "2", "1")]
    assert "canary of v2 completed" in champion[-1].reason
    assert not rollout.rollout_state(reg, NAME).active


def test_an_abort_puts_traffic_back_and_leaves_the_champion(reg):
    target = Target()
    rollout.start(reg, NAME, "2", plan=PLAN, apply=target, origin=origin("start"))
    aborted = rollout.abort(reg, NAME, apply=target, origin=origin("abort"), reason="canary 0.55 vs 0.85")
    assert aborted.changed and target.applied[-1] == Traffic("1")
    assert reg.aliases() == {"champion": "1"}
    assert reg.events() == [("canary_start", "2", 10.0), ("canary_abort", "2", 0.0)]
    assert read_history(reg.models[NAME]["tags"], "canary").done[-1].reason == "canary 0.55 vs 0.85"
    state = rollout.rollout_state(reg, NAME)
    assert state.finished == {"2": "canary_abort"} and state.traffic() == Traffic("1")
    # aborting again answers with the abort, changing nothing
    again = rollout.abort(reg, NAME, apply=target, origin=origin("abort", run="r2"))
    assert not again.changed and again.event.action == "canary_abort"


def test_rerunning_a_move_of_the_same_task_instance_records_it_once(reg):
    target = Target()
    first = rollout.start(reg, NAME, "2", plan=PLAN, apply=target, origin=origin("start"))
    again = rollout.start(reg, NAME, "2", plan=PLAN, apply=target, origin=origin("start"))
    assert not again.changed and again.event.seq == first.event.seq
    step = rollout.step(reg, NAME, apply=target, origin=origin("step"))
    assert not rollout.step(reg, NAME, apply=target, origin=origin("step")).changed
    assert reg.events() == [("canary_start", "2", 10.0), ("canary_step", "2", 50.0)]
    assert step.event.share == 50


def test_compare_and_sets_refuse_before_anything_moves(reg):
    target = Target()
    with pytest.raises(RegistryConflict, match="expected v7"):
        rollout.start(reg, NAME, "2", plan=PLAN, expected_control="7", apply=target, origin=origin("s"))
    with pytest.raises(RegistryStateError, match="already @champion"):
        rollout.start(reg, NAME, "1", plan=PLAN, apply=target, origin=origin("s"))
    started = rollout.start(reg, NAME, "2", plan=PLAN, apply=target, origin=origin("s"))
    with pytest.raises(RegistryConflict, match="v3 cannot start"):
        rollout.start(reg, NAME, "3", plan=PLAN, apply=target, origin=origin("s3"))
    with pytest.raises(RegistryConflict, match="not 2-999"):
        rollout.step(reg, NAME, rollout="2-999", apply=target, origin=origin("step"))
    # the champion moved under the canary (a manual promotion): completing it is refused
    reg.models[NAME]["aliases"]["champion"] = "3"
    with pytest.raises(RegistryConflict, match="moved to v3 since the canary started against v1"):
        rollout.complete(reg, NAME, rollout=started.result()["rollout"], apply=target, origin=origin("p"))
    assert target.applied == [Traffic("1", "2", 10)]
    with pytest.raises(RegistryConflict, match="abort it to sync"):
        rollout.sync(reg, NAME, apply=target)


def test_sync_puts_a_target_back_on_the_champion_after_a_rollback(reg):
    target = Target()
    rollout.start(reg, NAME, "2", plan=PLAN, apply=target, origin=origin("start"))
    rollout.complete(reg, NAME, apply=target, origin=origin("promote"))
    reg.models[NAME]["aliases"]["champion"] = "1"  # mlops_rollback moved it back
    assert rollout.sync(reg, NAME, apply=target, origin=origin("abort")) == Traffic("1")
    assert target.applied[-1] == Traffic("1")


def _crash_then_retry(reg: Registry, move, crash_at: int) -> None:
    reg.calls, reg.crash_at = 0, crash_at
    try:
        move()
    except Crash:
        pass
    finally:
        reg.crash_at = None
    for lock in [n for n in reg.models if n != NAME]:  # the dead holder's lease ran out
        del reg.models[lock]
    move()  # the same task instance's retry


@pytest.mark.parametrize("action", ["start", "step", "complete", "abort"])
def test_a_crash_at_any_registry_call_and_a_retry_converge_to_one_recorded_move(reg, action):
    def prepare(r: Registry, target: Target) -> None:
        if action != "start":
            rollout.start(r, NAME, "2", plan=PLAN, apply=target, origin=origin("start"))

    def move(r: Registry, target: Target):
        kwargs = {"apply": target, "origin": origin(action), "reason": "why"}
        if action == "start":
            return lambda: rollout.start(r, NAME, "2", plan=PLAN, **kwargs)
        return lambda: getattr(rollout, action)(r, NAME, **kwargs)

    clean, target = Registry(), Target()
    clean.models, clean.versions = (
        {NAME: {"tags": {}, "aliases": {"champion": "1"}, "created": 0}},
        dict(reg.versions),
    )
    prepare(clean, target)
    clean.calls = 0
    move(clean, target)()
    calls, expected_events, expected_aliases = clean.calls, clean.events(), clean.aliases()
    expected_traffic = target.applied[-1]
    assert calls > 3

    for crash_at in range(1, calls + 1):
        r, t = Registry(), Target()
        r.models, r.versions = (
            {NAME: {"tags": {}, "aliases": {"champion": "1"}, "created": 0}},
            {k: {} for k in reg.versions},
        )
        prepare(r, t)
        _crash_then_retry(r, move(r, t), crash_at)
        assert r.events() == expected_events, f"crash at call {crash_at}"
        assert r.aliases() == expected_aliases, f"crash at call {crash_at}"
        assert t.applied[-1] == expected_traffic, f"crash at call {crash_at}"
        history = read_history(r.models[NAME]["tags"], "canary")
        assert history.pending == [], f"crash at call {crash_at}"
