"""AzureMLJobTrigger: serialize round trip, and its async run() against a faked ``MLClient.jobs``
(each poll is one ``jobs.get``; ``jobs.stream`` is never called)."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_mlops.triggers.azure_ml import AzureMLJobTrigger

CONN = {
    "conn_type": "azure_ml",
    "extra": {"subscription_id": "sub", "resource_group": "rg", "workspace_name": "ws"},
}


def test_serialize_round_trip():
    trigger = AzureMLJobTrigger(
        conn_id="azure_ml_default", job_name="job-1", poll_interval=20.0, timeout=3600.0
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_mlops.triggers.azure_ml.AzureMLJobTrigger"
    assert kwargs == {
        "conn_id": "azure_ml_default",
        "job_name": "job-1",
        "poll_interval": 20.0,
        "timeout": 3600.0,
    }
    json.dumps(kwargs)
    module, name = path.rsplit(".", 1)
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.serialize() == (path, kwargs)


@pytest.fixture
def statuses(monkeypatch):
    """``jobs.get`` answers from a list of statuses (the last repeats); records the calling threads."""
    from azure.ai.ml import MLClient
    from azure.ai.ml.operations import JobOperations

    monkeypatch.setenv("AIRFLOW_CONN_AZURE_ML_DEFAULT", json.dumps(CONN))
    queue: list[str] = []
    threads: list[int] = []
    jobs = mock.create_autospec(JobOperations, instance=True)

    def get(name):
        threads.append(threading.get_ident())
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        if status == "raise":
            raise ConnectionError("workspace unreachable")
        return SimpleNamespace(name=name, status=status, studio_url=f"https://ml.azure.com/runs/{name}")

    jobs.get.side_effect = get
    monkeypatch.setattr(MLClient, "jobs", property(lambda self: jobs))
    # No credential needed for a faked workspace: DefaultAzureCredential is never asked for a token.
    return SimpleNamespace(queue=queue, threads=threads, jobs=jobs)


async def _run(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


@pytest.mark.parametrize(
    ("sequence", "status"),
    [
        (["Queued", "Preparing", "Running", "Finalizing", "Completed"], "success"),
        (["Running", "Failed"], "failed"),
        (["Running", "CancelRequested", "Canceled"], "cancelled"),
        (["Starting", "NotResponding"], "failed"),
    ],
)
async def test_run_fires_one_event_on_terminal_status(statuses, sequence, status):
    statuses.queue.extend(sequence)
    events = await _run(AzureMLJobTrigger(conn_id="azure_ml_default", job_name="job-1", poll_interval=0.01))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == status and event["job_id"] == "job-1"
    assert event["job_status"] == sequence[-1]
    assert event["message"] == f"Azure ML job job-1 ended with status {sequence[-1]}"
    assert event["studio_url"] == "https://ml.azure.com/runs/job-1"
    assert statuses.jobs.get.call_count == len(sequence)
    statuses.jobs.stream.assert_not_called()
    # every poll ran off the event loop's thread
    assert threading.get_ident() not in statuses.threads


async def test_run_times_out_while_job_runs(statuses):
    statuses.queue.append("Running")
    events = await _run(
        AzureMLJobTrigger(conn_id="azure_ml_default", job_name="job-1", poll_interval=0.05, timeout=0.2)
    )
    assert [e["status"] for e in events] == ["timeout"]
    assert events[0]["job_status"] == "Running" and "keeps running" in events[0]["message"]


async def test_run_reports_errors(statuses):
    statuses.queue.append("raise")
    (event,) = await _run(AzureMLJobTrigger(conn_id="azure_ml_default", job_name="job-1", poll_interval=0.01))
    assert event["status"] == "error"
    assert "ConnectionError: workspace unreachable" in event["message"]


async def test_run_does_not_block_the_event_loop(statuses, monkeypatch):
    """A slow ``jobs.get`` (network) must leave the loop free for other triggers."""
    import time

    statuses.queue.extend(["Running", "Completed"])
    original = statuses.jobs.get.side_effect

    def slow_get(name):
        time.sleep(0.3)
        return original(name)

    statuses.jobs.get.side_effect = slow_get
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    events = await _run(AzureMLJobTrigger(conn_id="azure_ml_default", job_name="job-1", poll_interval=0.01))
    task.cancel()
    assert events[0]["status"] == "success"
    assert ticks >= 10  # the loop kept running during ~0.6 s of blocking SDK calls
