"""Wait in the triggerer until a deployment target can take a traffic state.

One trigger serves every endpoint kind: it rebuilds the target from its name and configuration
(JSON) and asks its :meth:`~airflow_mlops.deploy.base.DeploymentTarget.ready` (one short
describe/get call of the cloud SDK) in a thread, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class DeploymentTargetTrigger(BaseTrigger):
    """
    Poll a deployment target until it is ready for ``traffic``, then fire one event
    ``{"status": "success" | "failed" | "timeout" | "error", "message": <text>, "target": <name>}``.

    :param target: target name (``sagemaker``, ``vertex_ai``, ``azure_ml``).
    :param config: the target's configuration (JSON-serialisable, from the DAG file).
    :param model_name: registered model the target serves.
    :param traffic: the :class:`~airflow_mlops.core.canary.Traffic` as a dict.
    :param poll_interval: seconds between two checks.
    :param timeout: seconds before a ``timeout`` event (None: no limit).
    """

    def __init__(
        self,
        target: str,
        config: dict[str, Any],
        model_name: str,
        traffic: dict[str, Any],
        poll_interval: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.config = config
        self.model_name = model_name
        self.traffic = traffic
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_mlops.triggers.deploy.DeploymentTargetTrigger",
            {
                "target": self.target,
                "config": self.config,
                "model_name": self.model_name,
                "traffic": self.traffic,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    def _check(self) -> tuple[bool, str]:
        from airflow_mlops.core.canary import Traffic
        from airflow_mlops.deploy.base import get_target

        target = get_target(self.target, self.config, logging.getLogger(__name__), model_name=self.model_name)
        return target.ready(Traffic.from_dict(self.traffic))

    def _event(self, status: str, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "message": message, "target": self.target})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + float(self.timeout)
        last = None
        while True:
            try:
                ready, message = await asyncio.to_thread(self._check)
            except Exception as err:
                yield self._event("failed", f"{type(err).__name__}: {err}")
                return
            if message != last:
                self.log.info("Deployment target %s: %s", self.target, message)
                last = message
            if ready:
                yield self._event("success", message)
                return
            if deadline is not None and time.monotonic() + self.poll_interval > deadline:
                yield self._event("timeout", f"still not ready after {self.timeout}s: {message}")
                return
            await asyncio.sleep(self.poll_interval)
