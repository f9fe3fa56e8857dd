"""Movers that race while a crashed move is being recovered: the crashed task's retry, an
emergency rollback and an unconditional promotion start together right after the restart. Each
sees the crashed holder's lock, one takes it (the retry at once, the others after the TTL), and
whatever the order, the history stays one chain of moves that ends at the alias holder, and the
crashed task's move is recorded once at most."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.faults.proxy import BEFORE, CrashPoint
from tests.faults.scenario import (
    PROMOTER,
    TEST_TTL,
    check_invariants,
    moves_of,
    origin,
    promote_kwargs,
    rollback_kwargs,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork"),
]


def _mover(uri: str, name: str, which: str) -> tuple[str, str, str | None]:
    from mlflow import MlflowClient

    from airflow_mlops.core import registry

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        if which == "retry":
            move = registry.promote(client, name, "3", **promote_kwargs())
        elif which == "rollback":
            move = registry.rollback(client, name, **rollback_kwargs())
        else:
            move = registry.promote(
                client, name, "1", **promote_kwargs(expected_current=None, origin=origin("promote_v1"))
            )
    except (registry.RegistryConflict, registry.RegistryStateError) as err:
        return which, type(err).__name__, str(err)
    return which, "ok", move.version


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param(CrashPoint(4, "set_registered_model_alias", BEFORE, False), id="intent-written"),
        pytest.param(CrashPoint(5, "set_model_version_tag", BEFORE, False), id="alias-moved"),
    ],
)
def test_movers_racing_during_recovery_keep_one_history(faults, crash):
    from tests.faults.conftest import recorded_calls

    assert recorded_calls()["promote"][crash.index] == crash.method
    name = faults.model()
    faulty = faults.faulty(crash)
    with pytest.raises(Exception):  # noqa: B017 -- the crash; its type is the matrix's business
        faults.hook(faulty).promote(name, "3", **promote_kwargs())
    faults.server.restart()

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
        futures = [
            pool.submit(_mover, faults.server.uri, name, w) for w in ("retry", "rollback", "promote_v1")
        ]
        results = [f.result(timeout=60 + 3 * TEST_TTL) for f in futures]

    outcomes = {which: status for which, status, _ in results}
    assert outcomes["promote_v1"] == "ok", results  # unconditional: always applies, in some order
    # the rollback can only fail for lack of history, e.g. after promote_v1 replaced v1 -> v1
    assert outcomes["rollback"] in ("ok", "RegistryStateError"), results
    # the retry either finished its move, found it done, or lost its compare-and-set to a mover
    assert outcomes["retry"] in ("ok", "RegistryConflict"), results
    history = check_invariants(faults.client, name)
    mine = moves_of(history, PROMOTER)
    assert mine in ([], [("promote", "3", "2")]), history.done
    if crash.id == "alias-moved":  # the alias had moved: whoever came first recorded that move
        assert mine == [("promote", "3", "2")]
