"""Wait for an Azure Machine Learning job in the triggerer, without holding a worker slot.

The SDK's ``jobs.stream`` blocks until the job ends; here each poll is one short
``jobs.get(name)`` call run in a thread (``asyncio.to_thread``) so the triggerer's event loop
never blocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow_mlops.hooks.azure_ml import AzureMLHook

# Azure ML statuses of an ended job (azure.ai.ml's RunHistoryConstants) -> the event's status.
# Any other status (Queued, Running, Finalizing, CancelRequested ...) is still running. The
# backend reads the same map, through backends.base.job_status, for its own polls.
TERMINAL_STATUSES: dict[str, str] = {
    "Completed": "success",
    "Failed": "failed",
    "NotResponding": "failed",
    "Paused": "failed",
    "Canceled": "cancelled",
}


class AzureMLJobTrigger(BaseTrigger):
    """
    Poll an Azure ML job until it reaches a terminal status, then fire one event.

    The event is ``{"status": "success" | "failed" | "cancelled" | "timeout" | "error",
    "job_id": <name>, "message": <text>, "job_status": <Azure ML status or None>,
    "studio_url": <url or None>}``.

    :param conn_id: connection of type ``azure_ml``.
    :param job_name: name of the Azure ML job.
    :param poll_interval: seconds between two ``jobs.get`` calls.
    :param timeout: seconds to wait before giving up with a ``timeout`` event (None: no limit).
        The job keeps running; only the wait stops.
    """

    def __init__(
        self,
        conn_id: str,
        job_name: str,
        poll_interval: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.job_name = job_name
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_mlops.triggers.azure_ml.AzureMLJobTrigger",
            {
                "conn_id": self.conn_id,
                "job_name": self.job_name,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    @cached_property
    def hook(self) -> AzureMLHook:
        from airflow_mlops.hooks.azure_ml import AzureMLHook

        return AzureMLHook(azure_ml_conn_id=self.conn_id)

    def _get_job(self) -> Any:
        # Runs in a worker thread: the hook is first built here (it reads the connection), and
        # both that and the SDK's jobs.get may do blocking I/O.
        return self.hook.get_conn().jobs.get(self.job_name)

    def _event(
        self, status: str, message: str, job_status: str | None, studio_url: str | None
    ) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "job_id": self.job_name,
                "message": message,
                "job_status": job_status,
                "studio_url": studio_url,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + float(self.timeout)
        last_status: str | None = None
        studio_url: str | None = None
        while True:
            try:
                job = await asyncio.to_thread(self._get_job)
            except Exception as err:
                message = f"cannot read Azure ML job {self.job_name}: {type(err).__name__}: {err}"
                yield self._event("error", message, last_status, studio_url)
                return
            status = str(job.status) if job.status is not None else None
            studio_url = getattr(job, "studio_url", None) or studio_url
            if status != last_status:
                self.log.info("Azure ML job %s is %s", self.job_name, status)
                last_status = status
            outcome = TERMINAL_STATUSES.get(status or "")
            if outcome is not None:
                message = f"Azure ML job {self.job_name} ended with status {status}"
                yield self._event(outcome, message, status, studio_url)
                return
            if deadline is not None and time.monotonic() + self.poll_interval > deadline:
                message = (
                    f"Azure ML job {self.job_name} still {status} after {self.timeout}s "
                    "of waiting (the job keeps running)"
                )
                yield self._event("timeout", message, status, studio_url)
                return
            await asyncio.sleep(self.poll_interval)
