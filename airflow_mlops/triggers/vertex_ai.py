"""Wait for a Vertex AI ``CustomJob`` in the triggerer, without holding a worker slot.

The Google provider's Vertex triggers wait for training *pipelines*, not custom jobs; this one
polls ``GetCustomJob`` through the provider's ``CustomJobAsyncHook`` (an async gRPC client: the
event loop never blocks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobAsyncHook

# Vertex AI JobState names of an ended job -> the event's status. Any other state is still running.
# (The backend reads the same map, through backends.base.job_status, for its own polls.)
TERMINAL_STATES: dict[str, str] = {
    "JOB_STATE_SUCCEEDED": "success",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
    "JOB_STATE_PAUSED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
}


class VertexAICustomJobTrigger(BaseTrigger):
    """
    Poll a Vertex AI custom job until it ends, then fire one event.

    The event is ``{"status": "success" | "failed" | "cancelled" | "timeout" | "error",
    "job_id": <id>, "message": <text>, "state": <JobState name or None>}``.

    :param conn_id: Google Cloud connection.
    :param project_id: project of the job.
    :param location: region of the job.
    :param job_id: numeric id of the custom job.
    :param poll_interval: seconds between two reads.
    :param timeout: seconds to wait before a ``timeout`` event (None: no limit); the job keeps running.
    :param impersonation_chain: optional service account(s) to impersonate.
    """

    def __init__(
        self,
        conn_id: str,
        project_id: str,
        location: str,
        job_id: str,
        poll_interval: float = 60.0,
        timeout: float | None = None,
        impersonation_chain: str | list[str] | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.project_id = project_id
        self.location = location
        self.job_id = job_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.impersonation_chain = impersonation_chain

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_mlops.triggers.vertex_ai.VertexAICustomJobTrigger",
            {
                "conn_id": self.conn_id,
                "project_id": self.project_id,
                "location": self.location,
                "job_id": self.job_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "impersonation_chain": self.impersonation_chain,
            },
        )

    @cached_property
    def hook(self) -> CustomJobAsyncHook:
        from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobAsyncHook

        return CustomJobAsyncHook(gcp_conn_id=self.conn_id, impersonation_chain=self.impersonation_chain)

    def _event(self, status: str, message: str, state: str | None) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_id": self.job_id, "message": message, "state": state})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + float(self.timeout)
        state: str | None = None
        try:
            client = await self.hook.get_job_service_client(region=self.location)
            while True:
                job = await self.hook.get_custom_job(
                    project_id=self.project_id, location=self.location, job_id=self.job_id, client=client
                )
                if job.state.name != state:
                    state = job.state.name
                    self.log.info("Vertex AI custom job %s is %s", self.job_id, state)
                outcome = TERMINAL_STATES.get(state)
                if outcome is not None:
                    message = f"Vertex AI custom job {job.name} ended {state}"
                    if job.error and job.error.message:
                        message += f": {job.error.message}"
                    yield self._event(outcome, message, state)
                    return
                if deadline is not None and time.monotonic() + self.poll_interval > deadline:
                    yield self._event(
                        "timeout",
                        f"Vertex AI custom job {self.job_id} still {state} after {self.timeout}s of waiting "
                        "(the job keeps running)",
                        state,
                    )
                    return
                await asyncio.sleep(self.poll_interval)
        except Exception as err:
            message = f"cannot read Vertex AI custom job {self.job_id}: {type(err).__name__}: {err}"
            yield self._event("error", message, state)
