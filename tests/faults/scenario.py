"""The start state every fault case builds, the moves it crashes, and the invariants it checks.

Start state: versions 1-3 of a fresh model, ``@champion`` promoted to v1 then v2 (two history
events). The promotion under test moves it to v3 with ``expected_current="2"``; the rollback
under test moves it back to v1. Both act as one Airflow task instance (their ``origin``), so a
second call with the same origin is that task's retry.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

from airflow_mlops.core import registry, tags
from airflow_mlops.core.registry import History, HistoryEvent, read_history
from airflow_mlops.core.registry.record import version_tags

ALIAS = "champion"
TEST_TTL = 6.0
"""Lock TTL of the fault cases: long enough for a move on a loaded machine, short enough that a
case waiting for a dead holder's lock costs seconds. The default TTL has its own test."""


def origin(task_id: str, run_id: str = "faults__run-1") -> dict[str, Any]:
    return {"dag_id": "faults", "run_id": run_id, "task_id": task_id, "map_index": -1, "user": "tester"}


PROMOTER = origin("promote")
ROLLER = origin("rollback")


def new_model(client: Any, run: Any = None, *, by_protocol: bool = False) -> str:
    """A fresh model in the start state, written directly in 5 calls (as the protocol would write
    it: ``test_the_start_state_is_what_the_protocol_writes``), or by two real promotions."""
    name = f"faults-{uuid.uuid4().hex[:10]}"
    if run is None:
        run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    if by_protocol:
        client.create_registered_model(name)
        for i in range(3):
            client.create_model_version(
                name, source=f"{run.info.artifact_uri}/m{i}", run_id=run.info.run_id, await_creation_for=0
            )
        registry.promote(client, name, "1", ALIAS, expected_current="none", origin=origin("setup_v1"))
        registry.promote(client, name, "2", ALIAS, expected_current="1", origin=origin("setup_v2"))
        return name
    events = [_done(1, "1", None, "setup_v1"), _done(2, "2", "1", "setup_v2")]
    client.create_registered_model(name, tags={tags.history_key(ALIAS, e.seq): e.to_json() for e in events})
    for i in range(3):
        written = version_tags(events[i]) if i < len(events) else {}
        client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/m{i}",
            run_id=run.info.run_id,
            tags={k.format(alias=ALIAS): v for k, v in written.items()},
            await_creation_for=0,
        )
    client.set_registered_model_alias(name, ALIAS, "2")
    return name


def _done(seq: int, version: str, previous: str | None, task_id: str) -> HistoryEvent:
    who = origin(task_id)
    return HistoryEvent(
        seq=seq,
        action="promote",
        alias=ALIAS,
        version=version,
        previous_version=previous,
        at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        dag_id=who["dag_id"],
        run_id=who["run_id"],
        task_id=who["task_id"],
        user=who["user"],
    )


def promote_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs = dict(alias=ALIAS, expected_current="2", reason="beat v2", origin=PROMOTER, lock_ttl=TEST_TTL)
    return {**kwargs, **overrides}


def rollback_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs = dict(alias=ALIAS, reason="v2 misbehaves", origin=ROLLER, lock_ttl=TEST_TTL)
    return {**kwargs, **overrides}


def record_calls(client: Any) -> dict[str, list[str]]:
    """The client calls of a clean promotion and a clean rollback, in order."""
    from tests.faults.proxy import FaultyClient

    recorded = {}
    name = new_model(client)
    proxy = FaultyClient(client)
    registry.promote(proxy, name, "3", **promote_kwargs())
    recorded["promote"] = proxy.calls
    name = new_model(client)
    proxy = FaultyClient(client)
    registry.rollback(proxy, name, **rollback_kwargs())
    recorded["rollback"] = proxy.calls
    return recorded


def lock_expiry(client: Any, name: str) -> float | None:
    """When the lock a crashed holder left expires (epoch seconds), or None when none is left."""
    from mlflow.exceptions import MlflowException

    try:
        lock = client.get_registered_model(f"{name}.mlops-lock.{ALIAS}")
    except MlflowException:
        return None
    return float(lock.tags[tags.LOCK_EXPIRES])


POLL_SLACK = 2.0
"""A waiter notices an expired lock at its next poll (at most 1 s apart) plus one call."""


def assert_did_not_wait(proxy: Any) -> None:
    """The move took the lock at its first or second attempt (a takeover): it never polled."""
    attempts = proxy.lock_attempts()
    assert 1 <= len(attempts) <= 2, f"{len(attempts)} attempts to take the lock: it waited"


def assert_waited_at_most_until(proxy: Any, expires: float | None) -> None:
    """The move took the lock at once if none was left, else no later than the dead lock's expiry."""
    attempts = proxy.lock_attempts()
    if expires is None:
        assert len(attempts) == 1, f"{len(attempts)} attempts to take a free lock"
    else:
        assert attempts[-1] <= expires + POLL_SLACK, (
            f"took the lock {attempts[-1] - expires:.1f}s after it expired"
        )


def holder(client: Any, name: str) -> str | None:
    aliases = client.get_registered_model(name).aliases
    return str(aliases[ALIAS]) if ALIAS in aliases else None


def check_invariants(client: Any, name: str) -> History:
    """Invariant (1) and the state a finished move leaves: the alias holder is the version of the
    last done event, every done event replaced the holder of the one before, nothing is pending,
    every history tag is readable, the holder carries the tags of its event, no lock is left."""
    model = client.get_registered_model(name)
    history = read_history(dict(model.tags), ALIAS)
    now = str(model.aliases[ALIAS]) if ALIAS in model.aliases else None
    assert not history.pending, f"events left pending: {history.pending}"
    assert not history.skipped, f"unreadable history tags: {history.skipped}"
    done = history.done
    assert done, "no history"
    assert done[-1].version == now, f"@{ALIAS} is at v{now} but the last done event says v{done[-1].version}"
    chain = [(e.previous_version, e.version) for e in done]
    for (_, before), (after_prev, _) in zip(chain, chain[1:], strict=False):
        assert after_prev == before, f"history is not a chain of moves: {chain}"
    last = done[-1]
    key = (tags.ROLLBACK_AT if last.action == "rollback" else tags.PROMOTED_AT).format(alias=ALIAS)
    assert client.get_model_version(name, now).tags.get(key) == last.at, f"v{now} lacks the tags of {last}"
    locks = client.search_registered_models(filter_string=f"name LIKE '{name}.mlops-lock%'")
    assert not locks, f"lock left: {[m.name for m in locks]}"
    return history


def moves_of(history: History, who: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(action, version, previous) of the done events written by the task instance ``who``."""
    return [(e.action, e.version, e.previous_version) for e in history.done if e.same_task(who)]


def retry_like_airflow(call, tries: int = 4) -> tuple[Any, int]:
    """Call ``call()`` again while it fails with an error Airflow retries (an ``MlopsError`` that is
    not an ``AirflowFailException``), as a task with ``retries`` would: a lease that ran out on
    a machine too loaded to renew it in time is such an error. Returns (result, tries)."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.exceptions import MlopsError

    for attempt in range(1, tries + 1):
        try:
            return call(), attempt
        except MlopsError as err:
            if isinstance(err, AirflowFailException) or attempt == tries:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")
