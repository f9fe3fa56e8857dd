"""One regression test per finding of shared/reviews/faults-and-security.md section 1 (and I19/I20
of section 2) that issue 12 lists, against the real server, each named after its probe."""

from __future__ import annotations

import json
import logging

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core import tags
from airflow_mlops.core.registry import read_history
from airflow_mlops.exceptions import MlopsError, PromotionConflict, RegistryError
from tests.faults.proxy import BEFORE, CrashPoint
from tests.faults.scenario import (
    PROMOTER,
    ROLLER,
    assert_did_not_wait,
    assert_waited_at_most_until,
    check_invariants,
    holder,
    lock_expiry,
    moves_of,
    origin,
    promote_kwargs,
    rollback_kwargs,
)

pytestmark = pytest.mark.integration


def _crash_after(faults, op: str, method: str) -> CrashPoint:
    """The point right after the first ``method`` call of a clean ``op``."""
    from tests.faults.conftest import recorded_calls

    calls = recorded_calls()[op]
    index = calls.index(method) + 1
    return CrashPoint(index, calls[index], BEFORE, False)


def test_r3_server_dies_between_alias_and_history_then_the_retry_records_the_move(faults):
    name = faults.model()
    faulty = faults.faulty(_crash_after(faults, "promote", "set_registered_model_alias"))
    with pytest.raises(MlopsError) as err:
        faults.hook(faulty).promote(name, "3", **promote_kwargs())
    assert not isinstance(err.value, AirflowFailException)
    faults.server.restart()
    assert holder(faults.client, name) == "3"  # the alias moved before the crash

    move = faults.hook().promote(name, "3", **promote_kwargs())
    assert (move.changed, move.previous_version) == (True, "2")  # not "changed=False, previous None"
    assert moves_of(check_invariants(faults.client, name), PROMOTER) == [("promote", "3", "2")]
    back = faults.hook().rollback(name, **rollback_kwargs())
    assert (back.version, back.previous_version) == ("2", "3")


def test_r6_oversize_reason_is_refused_before_anything_moves(faults):
    name = faults.model()
    proxy = faults.faulty()
    with pytest.raises(RegistryError, match=r"^reason: 100,001 characters; at most 10,000"):
        faults.hook(proxy).promote(name, "3", **promote_kwargs(reason="x" * 100_001))
    with pytest.raises(RegistryError, match=r"^reason: "):
        faults.hook(proxy).rollback(name, **rollback_kwargs(reason="y" * 100_001))
    assert proxy.calls == []  # refused before the registry was even asked
    assert holder(faults.client, name) == "2"
    check_invariants(faults.client, name)
    # the longest accepted reason, all escaped in JSON, still fits in one tag
    move = faults.hook().promote(name, "3", **promote_kwargs(reason="\u00e9" * 10_000))
    assert move.changed and move.event.reason == "\u00e9" * 10_000
    check_invariants(faults.client, name)


def test_r7_a_rollback_retried_after_its_history_write_failed_steps_back_once(faults):
    name = faults.model()
    faults.hook().promote(name, "3", **promote_kwargs())  # v1 -> v2 -> v3
    faulty = faults.faulty(_crash_after(faults, "rollback", "set_registered_model_alias"))
    with pytest.raises(MlopsError):
        faults.hook(faulty).rollback(name, **rollback_kwargs())
    faults.server.restart()
    results = [faults.hook().rollback(name, **rollback_kwargs()) for _ in range(3)]
    assert [(m.version, m.previous_version) for m in results] == [("2", "3")] * 3
    assert [m.changed for m in results] == [True, False, False]
    assert holder(faults.client, name) == "2"
    assert moves_of(check_invariants(faults.client, name), ROLLER) == [("rollback", "2", "3")]


def test_r2_r5_a_crashed_holders_lock_blocks_neither_the_retry_nor_a_rollback(faults):
    name = faults.model()
    faulty = faults.faulty(_crash_after(faults, "promote", "create_registered_model"))
    with pytest.raises(MlopsError) as err:
        faults.hook(faulty).promote(name, "3", **promote_kwargs())
    assert not isinstance(err.value, PromotionConflict)  # retried by Airflow, not failed for good
    faults.server.restart()
    lock = f"{name}.mlops-lock.champion"
    assert faults.client.get_registered_model(lock).tags[tags.LOCK_TASK] == "faults/faults__run-1/promote"

    retry = faults.faulty()
    faults.hook(retry).promote(name, "3", **promote_kwargs(lock_timeout=1))  # far below the TTL
    assert_did_not_wait(retry)
    check_invariants(faults.client, name)


def test_r5_a_crash_during_the_release_is_logged_and_lets_the_next_move_through(faults, caplog):
    from tests.faults.conftest import recorded_calls

    name = faults.model()
    calls = recorded_calls()["promote"]
    faulty = faults.faulty(CrashPoint(len(calls) - 1, calls[-1], BEFORE, True))
    caplog.set_level(logging.WARNING)
    move = faults.hook(faulty).promote(name, "3", **promote_kwargs())
    assert move.changed and "Could not release the registry lock" in caplog.text
    faults.server.restart()
    # another task (no retry of a task that succeeded): at most the TTL of waiting
    expires = lock_expiry(faults.client, name)
    assert expires is not None
    waiter = faults.faulty()
    back = faults.hook(waiter).rollback(name, **rollback_kwargs())
    assert_waited_at_most_until(waiter, expires)
    assert back.version == "2"
    check_invariants(faults.client, name)


def test_r14_unreadable_history_tags_are_named_skipped_and_kept(faults, caplog):
    name = faults.model()
    junk = {
        "mlops.history.champion.000003": json.dumps({"action": "promote"}),
        "mlops.history.champion.000004": "[1, 2]",
        "mlops.history.champion.000005": "7",
        "mlops.history.champion.000006": "{not json",
        "mlops.history.champion.notes": "hand-written",
    }
    for key, value in junk.items():
        faults.client.set_registered_model_tag(name, key, value)
    caplog.set_level(logging.WARNING)
    move = faults.hook().promote(name, "3", **promote_kwargs())
    assert move.event.seq == 7  # after the highest number in use: no unreadable tag is overwritten
    back = faults.hook().rollback(name, **rollback_kwargs())
    assert (back.version, back.previous_version) == ("2", "3")
    for key in junk:
        assert key in caplog.text
    model_tags = faults.client.get_registered_model(name).tags
    assert {k: model_tags[k] for k in junk} == junk
    history = read_history(model_tags, "champion")
    assert [e.seq for e in history.done] == [1, 2, 7, 8]
    assert sorted(k for k, _ in history.skipped) == sorted(junk)


def test_r17_a_model_named_like_the_lock_is_refused_and_never_deleted(faults):
    name = faults.model()
    faults.client.create_registered_model(f"{name}.mlops-lock.champion", description="someone's model")
    proxy = faults.faulty()
    with pytest.raises(RegistryError, match="exists but is not an airflow-mlops lock"):
        faults.hook(proxy).promote(name, "3", **promote_kwargs())
    assert proxy.calls.count("create_registered_model") == 1  # refused at once, not after lock_timeout
    with pytest.raises(RegistryError, match="rename that model"):
        faults.hook().rollback(name, **rollback_kwargs())
    assert faults.client.get_registered_model(f"{name}.mlops-lock.champion").description == "someone's model"
    faults.client.delete_registered_model(f"{name}.mlops-lock.champion")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "abc"}, r"^version: 'abc' is not a model version number"),
        ({"version": "0"}, r"^version: '0' is not"),
        ({"version": "3", "expected_current": "two"}, r"^expected_current: 'two' is not"),
        ({"version": "3", "alias": "a/b"}, r"^alias: 'a/b' is not an alias"),
        ({"version": "3", "alias": "latest"}, r"^alias: 'latest' is reserved"),
        ({"version": "3", "lock_timeout": float("nan")}, r"^lock_timeout: nan must be a finite number"),
    ],
)
def test_i19_bad_settings_fail_fast_naming_the_setting(faults, kwargs, message):
    name = faults.model()
    proxy = faults.faulty()
    version = kwargs.pop("version")
    with pytest.raises(RegistryError, match=message) as err:
        faults.hook(proxy).promote(name, version, **promote_kwargs(**kwargs))
    assert isinstance(err.value, AirflowFailException)  # a retry cannot fix a setting
    assert proxy.calls == []


@pytest.mark.parametrize("bound", [float("nan"), "nan", float("inf"), -5, 1.5])
def test_i20_thresholds_outside_the_metric_range_are_refused(bound):
    """Fixed in core/evaluation.py (check_thresholds through core/metrics.check_bound)."""
    from airflow_mlops.core.evaluation import check_thresholds
    from airflow_mlops.operators.evaluation import EvaluateModelOperator

    with pytest.raises(ValueError, match=r"thresholds\['accuracy'\]"):
        check_thresholds({"accuracy": bound})
    with pytest.raises(ValueError, match=r"thresholds\['accuracy'\]"):
        EvaluateModelOperator(
            task_id="evaluate",
            model_name="m",
            candidate_version="1",
            eval_data="/d.parquet",
            target="label",
            metric="accuracy",
            thresholds={"accuracy": bound},
        )


def test_origin_of_a_mapped_task_is_its_own_mover(faults):
    """Two map indexes of one task are two movers (and two lock identities): a retry of index 1
    does not take index 0's move for its own."""
    name = faults.model()
    first = faults.hook().promote(name, "3", **promote_kwargs(origin={**PROMOTER, "map_index": 0}))
    second = faults.hook().promote(
        name, "1", **promote_kwargs(expected_current="3", origin={**PROMOTER, "map_index": 1})
    )
    assert first.changed and second.changed
    history = check_invariants(faults.client, name)
    assert moves_of(history, {**PROMOTER, "map_index": 1}) == [("promote", "1", "3")]
    assert moves_of(history, origin("promote")) == []  # the unmapped task moved nothing
