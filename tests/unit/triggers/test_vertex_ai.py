"""VertexAICustomJobTrigger: serialize round trip, and its async run() against a faked async
``JobServiceAsyncClient`` (the provider's ``CustomJobAsyncHook`` is real)."""

from __future__ import annotations

import importlib
import json
from unittest import mock

import pytest

from airflow_mlops.triggers.vertex_ai import VertexAICustomJobTrigger

PROJECT = "mlops-project"
REGION = "europe-west4"


def test_trigger_serialize_round_trip():
    trigger = VertexAICustomJobTrigger(
        conn_id="gcp",
        project_id=PROJECT,
        location=REGION,
        job_id="42",
        poll_interval=5.0,
        timeout=60.0,
        impersonation_chain=["sa@x"],
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_mlops.triggers.vertex_ai.VertexAICustomJobTrigger"
    json.dumps(kwargs)  # primitives only
    module, name = path.rsplit(".", 1)
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.serialize() == (path, kwargs)


@pytest.fixture
def async_states(monkeypatch):
    """Answers GetCustomJob from a list of states (the last one repeats)."""
    from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobAsyncHook
    from google.cloud.aiplatform_v1 import JobServiceAsyncClient
    from google.cloud.aiplatform_v1.types import CustomJob, JobState

    states: list[tuple[str, str | None]] = []
    client = mock.create_autospec(JobServiceAsyncClient, instance=True)
    client.custom_job_path.side_effect = JobServiceAsyncClient.custom_job_path

    async def get_custom_job(request, **_):
        state, error = states.pop(0) if len(states) > 1 else states[0]
        if state == "raise":
            raise PermissionError("403 caller lacks aiplatform.customJobs.get")
        job = CustomJob(name=request["name"], state=getattr(JobState, state))
        if error:
            job.error.message = error
        return job

    client.get_custom_job.side_effect = get_custom_job

    async def get_client(self, region=None):
        return client

    monkeypatch.setattr(CustomJobAsyncHook, "get_job_service_client", get_client)
    return states


async def _events(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


@pytest.mark.parametrize(
    ("states", "status", "text"),
    [
        (
            [("JOB_STATE_PENDING", None), ("JOB_STATE_RUNNING", None), ("JOB_STATE_SUCCEEDED", None)],
            "success",
            "ended JOB_STATE_SUCCEEDED",
        ),
        ([("JOB_STATE_RUNNING", None), ("JOB_STATE_FAILED", "exit status 1")], "failed", "exit status 1"),
        (
            [("JOB_STATE_CANCELLING", None), ("JOB_STATE_CANCELLED", None)],
            "cancelled",
            "ended JOB_STATE_CANCELLED",
        ),
        ([("raise", None)], "error", "lacks aiplatform.customJobs.get"),
    ],
)
async def test_trigger_run_outcomes(async_states, states, status, text):
    async_states.extend(states)
    trigger = VertexAICustomJobTrigger(
        conn_id="gcp", project_id=PROJECT, location=REGION, job_id="42", poll_interval=0.01
    )
    (event,) = await _events(trigger)
    assert event["status"] == status and event["job_id"] == "42"
    assert text in event["message"]


async def test_trigger_run_timeout(async_states):
    async_states.append(("JOB_STATE_RUNNING", None))
    trigger = VertexAICustomJobTrigger(
        conn_id="gcp", project_id=PROJECT, location=REGION, job_id="42", poll_interval=0.05, timeout=0.2
    )
    (event,) = await _events(trigger)
    assert event["status"] == "timeout" and event["state"] == "JOB_STATE_RUNNING"
    assert "keeps running" in event["message"]
