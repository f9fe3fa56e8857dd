"""The suite's fast restarts (a serving process forked from a zygote) hide nothing: here the
process killed is the ``mlflow server`` command itself (its whole process group: the command and
its uvicorn worker), on the suite's store and port; the server that comes back on that store
recovers the same state, and the retry completes the move the same way."""

from __future__ import annotations

import pytest

from tests.faults.proxy import BEFORE, CrashPoint, FaultyClient
from tests.faults.scenario import PROMOTER, check_invariants, holder, moves_of, promote_kwargs
from tests.faults.server import CliServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sigkill_of_the_mlflow_server_command_between_alias_and_record(faults):
    from tests.faults.conftest import recorded_calls

    faults.server.kill()  # not a fault: make room for the command on the same port and store
    cli = CliServer(faults.server.root, faults.server.port)
    cli.start()
    try:
        name = faults.model()
        calls = recorded_calls()["promote"]
        index = calls.index("set_registered_model_alias") + 1
        faulty = FaultyClient(faults.client, cli, CrashPoint(index, calls[index], BEFORE, False))
        with pytest.raises(Exception, match="API request to .* failed"):
            faults.hook(faulty).promote(name, "3", **promote_kwargs())
        assert faulty.fired and cli.pid is None
    finally:
        cli.close()
    faults.server.restart()
    assert holder(faults.client, name) == "3"
    move = faults.hook().promote(name, "3", **promote_kwargs())
    assert (move.version, move.previous_version, move.changed) == ("3", "2", True)
    assert moves_of(check_invariants(faults.client, name), PROMOTER) == [("promote", "3", "2")]
