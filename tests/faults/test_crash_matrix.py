"""The server is SIGKILLed at every registry call of a promotion and of a rollback, restarted on the
same store, and the same task instance retries: the invariants hold at every crash point.

The crash points come from a recorded clean run (``conftest.recorded_calls``): each call once
*before* it is sent, and each write once *after* the server applied it but before the answer
arrived (``proxy.BEFORE`` / ``proxy.AFTER``). A call added to the protocol adds its cases.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core.registry import read_history
from airflow_mlops.exceptions import MlopsError, PromotionConflict
from tests.faults.proxy import AFTER
from tests.faults.scenario import (
    PROMOTER,
    ROLLER,
    assert_did_not_wait,
    assert_waited_at_most_until,
    check_invariants,
    holder,
    lock_expiry,
    moves_of,
    new_model,
    promote_kwargs,
    retry_like_airflow,
    rollback_kwargs,
)

pytestmark = pytest.mark.integration


def _first_try(call, point, faulty) -> None:
    """Run the crashing try. The lock release is the one call whose failure is no error: the move
    is complete and recorded, the failure is logged, and the lock expires by itself."""
    try:
        call()
    except MlopsError as err:
        assert not point.last, f"a failed lock release failed the task: {err}"
        assert not isinstance(err, AirflowFailException), f"a server crash must be retried, got {err!r}"
    else:
        assert point.last, f"the try survived a crash at {point.id}"
    assert faulty.fired, f"the crash point {point.id} was not reached (calls: {faulty.calls})"


def _new(proxies: list, faults):
    """A recording client for one try, kept in ``proxies``."""
    proxies.append(faults.faulty())
    return proxies[-1]


def test_the_start_state_is_what_the_protocol_writes(faults):
    """Cases build their start state directly (5 calls instead of 30); it is the same state."""
    direct, real = faults.model(), new_model(faults.client, by_protocol=True)

    def state(name):
        model = faults.client.get_registered_model(name)
        events = [
            (e.action, e.version, e.previous_version, e.status, e.task_id)
            for e in read_history(model.tags, "champion").events
        ]
        versions = {v: sorted(faults.client.get_model_version(name, v).tags) for v in ("1", "2", "3")}
        return model.aliases, events, versions

    assert state(direct) == state(real)
    check_invariants(faults.client, direct)


def test_the_recorded_calls_are_the_calls_made_through_the_hook(faults):
    """The crash points were recorded on an embedded store; the hook on the server makes the same
    calls (so every case really crashes where its id says)."""
    from tests.faults.conftest import recorded_calls

    for op, call in (
        ("promote", lambda hook, name: hook.promote(name, "3", **promote_kwargs())),
        ("rollback", lambda hook, name: hook.rollback(name, **rollback_kwargs())),
    ):
        name = faults.model()
        proxy = faults.faulty()
        call(faults.hook(proxy), name)
        assert proxy.calls == recorded_calls()[op]


def test_promotion_crash_then_retry(faults, promote_point):
    name = faults.model()
    faulty = faults.faulty(promote_point)
    _first_try(lambda: faults.hook(faulty).promote(name, "3", **promote_kwargs()), promote_point, faulty)
    faults.server.restart()

    proxies = []
    move, _ = retry_like_airflow(
        lambda: faults.hook(_new(proxies, faults)).promote(name, "3", **promote_kwargs())
    )
    assert_did_not_wait(proxies[-1])  # its own dead lock is taken over at once
    assert move.result() == {"model_name": name, "alias": "champion", "version": "3", "previous_version": "2"}
    history = check_invariants(faults.client, name)
    assert moves_of(history, PROMOTER) == [("promote", "3", "2")]


def test_rollback_crash_then_retry(faults, rollback_point):
    name = faults.model()
    faulty = faults.faulty(rollback_point)
    _first_try(lambda: faults.hook(faulty).rollback(name, **rollback_kwargs()), rollback_point, faulty)
    faults.server.restart()

    proxies = []
    move, _ = retry_like_airflow(
        lambda: faults.hook(_new(proxies, faults)).rollback(name, **rollback_kwargs())
    )
    assert_did_not_wait(proxies[-1])
    assert (move.version, move.previous_version) == ("1", "2")
    history = check_invariants(faults.client, name)
    assert moves_of(history, ROLLER) == [("rollback", "1", "2")]

    if rollback_point.when == AFTER:
        return  # the state is that of the crash before the next call: its case goes on below

    # retried again (a third try): still one step back, not two
    again = faults.hook().rollback(name, **rollback_kwargs())
    assert (again.version, again.previous_version, again.changed) == ("1", "2", False)
    assert holder(faults.client, name) == "1"
    assert moves_of(check_invariants(faults.client, name), ROLLER) == [("rollback", "1", "2")]


def test_promotion_crash_then_rollback_by_another_task(faults, promote_state_point):
    """The emergency rollback comes before the crashed promotion's retry: it waits at most the
    lock TTL for the dead holder, settles its pending event, and rolls back from whatever holds
    the alias; the promotion's retry then makes no second move."""
    name = faults.model()
    faulty = faults.faulty(promote_state_point)
    _first_try(
        lambda: faults.hook(faulty).promote(name, "3", **promote_kwargs()), promote_state_point, faulty
    )
    faults.server.restart()
    moved = holder(faults.client, name) == "3"

    expires = lock_expiry(faults.client, name)
    proxies = []
    back, _ = retry_like_airflow(
        lambda: faults.hook(_new(proxies, faults)).rollback(name, **rollback_kwargs())
    )
    assert_waited_at_most_until(proxies[0], expires)  # a dead holder blocks it at most its TTL
    assert (back.previous_version, back.version) == (("3", "2") if moved else ("2", "1"))
    history = check_invariants(faults.client, name)
    assert moves_of(history, PROMOTER) == ([("promote", "3", "2")] if moved else [])

    before = holder(faults.client, name)
    if moved:  # the promotion happened and is recorded: its retry is a no-op
        again = faults.hook().promote(name, "3", **promote_kwargs())
        assert (again.version, again.changed) == ("3", False)
    else:  # it never happened, and @champion is no longer at v2: the retry is refused for good
        with pytest.raises(PromotionConflict, match="expected it at v2, but it is at v1"):
            faults.hook().promote(name, "3", **promote_kwargs())
    assert holder(faults.client, name) == before
    history = check_invariants(faults.client, name)
    assert len(moves_of(history, PROMOTER)) == int(moved)
