"""The registry lock against a real server: how long a dead holder blocks others, what a slow
holder does, and how a busy lock fails (retried, not a conflict)."""

from __future__ import annotations

import logging
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core import tags
from airflow_mlops.core.registry import LOCK_TTL, RegistryLock
from airflow_mlops.exceptions import MlopsError
from tests.faults.proxy import BEFORE, CrashPoint, FaultyClient
from tests.faults.scenario import (
    PROMOTER,
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


def _dead_lock(client, name: str, *, task: str | None = None, ttl: float = LOCK_TTL) -> None:
    """The lock a holder that died leaves: taken, never released, expiring ``ttl`` from now."""
    lock_tags = {tags.LOCK_OWNER: "dead#1", tags.LOCK_EXPIRES: f"{time.time() + ttl:.3f}"}
    if task:
        lock_tags[tags.LOCK_TASK] = task
    client.create_registered_model(f"{name}.mlops-lock.champion", tags=lock_tags)


def test_a_crashed_holders_lock_expires_within_the_default_ttl(faults):
    """The bound, in two parts: a lock taken with the default TTL says it expires at most
    ``LOCK_TTL`` after the crash (here), and a waiter breaks an expired lock at once (the crash
    matrix's rollbacks by another task, with a short TTL, bound their wait by it)."""
    from tests.faults.conftest import recorded_calls

    name = faults.model()
    calls = recorded_calls()["promote"]
    index = calls.index("create_registered_model") + 1
    faulty = faults.faulty(CrashPoint(index, calls[index], BEFORE, False))
    with pytest.raises(MlopsError):
        faults.hook(faulty).promote(name, "3", **promote_kwargs(lock_ttl=LOCK_TTL))
    crashed = time.time()
    faults.server.restart()
    lock = faults.client.get_registered_model(f"{name}.mlops-lock.champion").tags
    expires = float(lock[tags.LOCK_EXPIRES])
    assert crashed + LOCK_TTL - 10 < expires <= crashed + LOCK_TTL  # taken just before the crash
    assert LOCK_TTL <= 30  # the bound issue 12 asks for
    faults.hook().promote(name, "3", **promote_kwargs())  # the same task's retry clears it at once
    check_invariants(faults.client, name)


def test_the_same_task_takes_its_dead_lock_over_at_once(faults):
    name = faults.model()
    _dead_lock(faults.client, name, task="faults/faults__run-1/promote", ttl=3600)
    retry = faults.faulty()
    move = faults.hook(retry).promote(name, "3", **promote_kwargs())
    assert_did_not_wait(retry)
    assert move.changed and move.version == "3"
    check_invariants(faults.client, name)


def test_a_live_lock_fails_the_task_as_retriable_and_names_its_holder(faults):
    name = faults.model()
    _dead_lock(faults.client, name, task="other_dag/run/promote", ttl=3600)
    with pytest.raises(MlopsError, match=r"could not lock .*dead#1 holds the registry lock") as err:
        faults.hook().promote(name, "3", **promote_kwargs(lock_timeout=1))
    assert not isinstance(err.value, AirflowFailException)
    assert holder(faults.client, name) == "2"
    faults.client.delete_registered_model(f"{name}.mlops-lock.champion")


class _Slow(FaultyClient):
    """Every call (or only ``method``) takes ``delay`` seconds longer: a registry under load."""

    def __init__(self, client, delay: float, method: str | None = None):
        super().__init__(client)
        self.delay, self.method = delay, method

    def __getattr__(self, name):
        attr = super().__getattr__(name)
        if not callable(attr) or name.startswith("_") or (self.method and name != self.method):
            return attr

        def slow(*args, **kwargs):
            time.sleep(self.delay)
            return attr(*args, **kwargs)

        return slow


def test_a_slow_holder_renews_its_lease_and_finishes(faults):
    name = faults.model()
    slow = _Slow(faults.client, 0.6, method="set_model_version_tag")  # 5 calls: 3 s, > 1.5 TTLs
    move = faults.hook(slow).promote(name, "3", **promote_kwargs(lock_ttl=2.0))
    assert move.changed and move.version == "3"
    assert slow.renewals >= 1, "a move longer than half the TTL renews the lease"
    check_invariants(faults.client, name)


def test_a_holder_whose_lease_ran_out_stops_and_its_retry_finishes(faults):
    """A single call longer than the lease: the holder writes nothing more (someone may have
    broken its lock meanwhile) and fails as retriable; the retry completes the same move."""
    name = faults.model()
    stalled = _Slow(faults.client, 2.5, method="set_registered_model_alias")
    with pytest.raises(MlopsError, match="lease on the registry lock .* ran out") as err:
        faults.hook(stalled).promote(name, "3", **promote_kwargs(lock_ttl=2.0))
    assert not isinstance(err.value, AirflowFailException)
    move = faults.hook().promote(name, "3", **promote_kwargs(lock_ttl=2.0))
    assert (move.version, move.previous_version, move.changed) == ("3", "2", True)
    assert moves_of(check_invariants(faults.client, name), PROMOTER) == [("promote", "3", "2")]


def test_a_failed_release_is_logged_and_the_lock_expires_within_the_ttl(faults, caplog):
    name = faults.model()

    class _NoRelease(FaultyClient):
        def delete_registered_model(self, model_name):
            raise OSError("connection reset while releasing")

    caplog.set_level(logging.WARNING)
    move = faults.hook(_NoRelease(faults.client)).promote(name, "3", **promote_kwargs(lock_ttl=2.0))
    assert move.changed
    assert "Could not release the registry lock" in caplog.text and "expires by itself" in caplog.text
    expires = lock_expiry(faults.client, name)
    waiter = faults.faulty()
    back = faults.hook(waiter).rollback(name, **rollback_kwargs(origin=origin("rollback_2")))
    assert back.version == "2"
    assert_waited_at_most_until(waiter, expires)
    check_invariants(faults.client, name)


def test_lock_object_is_exclusive_across_clients(faults):
    """Two holders of one alias never overlap: the second waits for the first's release."""
    name = faults.model()
    first = RegistryLock(faults.client, name, "champion", task=None, ttl=10, timeout=5)
    second = RegistryLock(faults.client, name, "champion", task=None, ttl=10, timeout=0.5)
    with first:
        with pytest.raises(Exception, match="could not lock"):
            second.acquire()
    with second:
        pass
    assert not faults.client.search_registered_models(filter_string=f"name LIKE '{name}.mlops-lock%'")
