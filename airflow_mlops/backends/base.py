"""Where training runs: the small interface every backend implements.

A backend takes a :class:`TrainingJobSpec` (the entrypoint contract of docs/training.md: a
script, training/validation data URIs, hyper-parameters) and runs it somewhere; when the job is
done it brings the output directory back (``<dir>/model`` an MLflow model, ``<dir>/metrics.json``)
so that ``TrainModelOperator`` registers it in the one MLflow registry, wherever training ran.

Backends are looked up by name (:func:`get_backend`) and import their cloud SDKs lazily; a
missing extra raises :class:`~airflow_mlops.exceptions.MissingExtraError` naming it.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import logging

    from airflow.triggers.base import BaseTrigger

BACKENDS: dict[str, str] = {
    "local": "airflow_mlops.backends.local.LocalBackend",
    "sagemaker": "airflow_mlops.backends.sagemaker.SageMakerBackend",
    "vertex_ai": "airflow_mlops.backends.vertex_ai.VertexAIBackend",
    "azure_ml": "airflow_mlops.backends.azure_ml.AzureMLBackend",
}

# Trigger event statuses (ours and the Amazon/Google providers') -> JobHandle.status.
# Anything unknown, a timeout or an error while waiting counts as a failure: never as success.
EVENT_STATUSES: dict[str, str] = {
    "success": "succeeded",
    "succeeded": "succeeded",
    "completed": "succeeded",
    "failed": "failed",
    "error": "failed",
    "timeout": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "stopped": "cancelled",
}


@dataclass
class TrainingJobSpec:
    """What to run. Everything is JSON-serialisable so it can cross a deferral."""

    entrypoint: str
    """Local path of the training script; its folder is the code that is shipped."""
    train_data: str
    validation_data: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    job_name: str = ""
    """Deterministic per task instance (dag, run, task): a re-run reattaches to the same job."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingJobSpec:
        return cls(**data)


@dataclass
class JobHandle:
    """A submitted job; JSON-serialisable so it survives deferral and a worker crash."""

    backend: str
    job_id: str
    console_url: str | None = None
    status: str = "submitted"
    """``submitted`` | ``running`` | ``succeeded`` | ``failed`` | ``cancelled``"""
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Backend-specific data needed to fetch results (output URIs, local output dir ...)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobHandle:
        return cls(**data)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


class TrainingBackend(ABC):
    """Runs a training job somewhere.

    :param config: ``backend_config`` from the operator (validated by the backend).
    :param log: the task's logger, so the job's progress shows in the task log.
    """

    name: ClassVar[str]
    extra: ClassVar[str | None] = None
    """The pip extra that provides this backend's SDK (None: core install)."""

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        self.config = dict(config or {})
        self.log = log

    @abstractmethod
    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        """Start the job, or reattach to a live or finished job named ``spec.job_name``."""

    @abstractmethod
    def poll(self, handle: JobHandle) -> JobHandle:
        """Current status of the job (blocking call, short)."""

    def trigger(self, handle: JobHandle, poll_interval: float) -> BaseTrigger | None:
        """A trigger that fires when the job ends, for deferrable waiting (None: wait in the worker)."""
        return None

    @abstractmethod
    def fetch_output(self, handle: JobHandle, local_dir: str) -> str:
        """Bring the job's output directory to ``local_dir``; return the directory holding
        ``model/`` and ``metrics.json``."""

    def handle_event(self, handle: JobHandle, event: dict[str, Any]) -> JobHandle:
        """Fold the trigger's completion event into ``handle`` (call it from ``execute_complete``).

        Provider triggers word their events differently (``success``, ``failed``, ``stopped``,
        ``timeout``, ``error`` ...); this returns a copy of the handle whose ``status`` is one of
        the :class:`JobHandle` statuses and whose ``message`` says why. Cloud backends override it
        to ask the job itself for the definitive state and failure reason.
        """
        status = EVENT_STATUSES.get(str(event.get("status", "")).lower(), "failed")
        message = event.get("message") or handle.message
        return replace(handle, status=status, message=message)

    def reconcile_event(
        self,
        handle: JobHandle,
        event: dict[str, Any],
        service: str,
        state_key: str,
        *,
        poll_on_error: bool = False,
    ) -> JobHandle:
        """``handle_event`` for a remote job: the job itself, not the event, has the last word.

        An ``error`` event (the trigger could not read the job) fails with its message, unless
        ``poll_on_error``; any other event is followed by a :meth:`poll` for the definitive state
        and failure reason, and a job still running when the trigger gave up fails the wait.

        :param service: the service's name for messages (``"SageMaker"``).
        :param state_key: the key of ``handle.details`` where :meth:`poll` puts the remote state.
        """
        self.log.info("%s trigger event for %s: %s", service, handle.job_id, event)
        if event.get("status") == "error" and not poll_on_error:
            return replace(handle, status="failed", message=event.get("message"))
        current = self.poll(handle)
        if not current.done:
            return replace(
                current,
                status="failed",
                message=f"stopped waiting for {service} job {handle.job_id} while it is "
                f"{current.details.get(state_key)}: {event.get('message') or event.get('status')}",
            )
        return current

    def cancel(self, handle: JobHandle) -> None:
        """Stop the remote job (called from ``on_kill``). Default: nothing to cancel."""
        self.log.info("Backend %s has nothing to cancel for job %s", self.name, handle.job_id)


def get_backend(name: str, config: dict[str, Any] | None, log: logging.Logger) -> TrainingBackend:
    """Instantiate the backend called ``name``; unknown names list the valid ones."""
    path = BACKENDS.get(name)
    if path is None:
        raise ValueError(f"unknown training backend {name!r}; choose one of {sorted(BACKENDS)}")
    module_name, class_name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, log)
