"""Where training runs: the small interface every backend implements.

A backend takes a :class:`TrainingJobSpec` (the entrypoint contract of docs/training.md: a
script, training/validation data URIs, hyper-parameters) and runs it somewhere; when the job is
done it brings the output directory back (``<dir>/model`` an MLflow model, ``<dir>/metrics.json``)
so that ``TrainModelOperator`` registers it in the one MLflow registry, wherever training ran.

Backends are looked up by name (:func:`get_backend`) and import their cloud SDKs lazily; a
missing extra raises :class:`~airflow_mlops.exceptions.MissingExtraError` naming it.

Below the interface sit the helpers every backend would otherwise write again: the
``backend_config`` key check, the entrypoint and output checks, the ``-rN`` names of re-runs, the
code shipped to a job, and a handle (status and message) built from a remote job's state.
"""

from __future__ import annotations

import difflib
import gzip
import importlib
import io
import os
import tarfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlops.core.lineage import safe_job_name
from airflow_mlops.exceptions import DataInputError, TrainingJobFailed, require_extra

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

MAX_RERUNS = 50
"""Fresh jobs one task instance may start after failed ones (see :meth:`TrainingBackend.reattach_or_rename`)."""

SKIP_NAMES = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store"})
"""Files and folders that never belong in the code shipped to a job."""


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
    title: ClassVar[str] = ""
    """The service's name in messages (``"SageMaker"``; default: ``name``)."""
    job_noun: ClassVar[str] = "training job"
    """What the service calls one job, with its name (``"SageMaker training job"``)."""
    extra: ClassVar[str | None] = None
    """The pip extra that provides this backend's SDK (None: core install)."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Modules the extra installs; a missing one raises :class:`MissingExtraError` naming ``extra``."""
    config_keys: ClassVar[frozenset[str]] = frozenset()
    """The ``backend_config`` keys this backend understands; any other key is an error."""
    form_keys: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """The keys a run's trigger form may set (``TrainModelOperator(backend_overrides=...)``), with
    their JSON schema: sizing only (instance type and count, disk, time limits), never code,
    identity or outputs (see :mod:`airflow_mlops.core.trust`)."""

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        self.config = dict(config or {})
        self.log = log
        title = self.title or self.name
        for module in self.requires:
            require_extra(module, f"The {title} training backend", self.extra or "all")
        check_config_keys(self.config, self.config_keys, title)

    def validate(self, spec: TrainingJobSpec) -> None:
        """Refuse a spec this backend cannot run, before anything is hashed, uploaded or started
        (no I/O beyond the local disk). Default: the entrypoint must be a file."""
        require_entrypoint(spec)

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
        state_key: str,
        *,
        poll_on_error: bool = False,
    ) -> JobHandle:
        """``handle_event`` for a remote job: the job itself, not the event, has the last word.

        An ``error`` event (the trigger could not read the job) fails with its message, unless
        ``poll_on_error``; any other event is followed by a :meth:`poll` for the definitive state
        and failure reason, and a job still running when the trigger gave up fails the wait.

        :param state_key: the key of ``handle.details`` where :meth:`poll` puts the remote state.
        """
        self.log.info("%s trigger event for %s: %s", self.title, handle.job_id, event)
        if event.get("status") == "error" and not poll_on_error:
            return replace(handle, status="failed", message=event.get("message"))
        current = self.poll(handle)
        if not current.done:
            return replace(
                current,
                status="failed",
                message=f"stopped waiting for {self.job_noun} {handle.job_id} while it is "
                f"{current.details.get(state_key)}: {event.get('message') or event.get('status')}",
            )
        return current

    def find_job(self, spec: TrainingJobSpec) -> JobHandle | None:
        """The job :meth:`submit` started for ``spec`` when its handle never came back (the task
        was killed mid-submission), found by its deterministic name; None: there is none."""
        return None

    def cancel(self, handle: JobHandle) -> None:
        """Stop the remote job (called from ``on_kill``). Default: nothing to cancel."""
        self.log.info("Backend %s has nothing to cancel for job %s", self.name, handle.job_id)

    # ------------------------------------------------------------------ helpers for subclasses

    def job_handle(
        self,
        job_id: str,
        remote_status: str,
        status: str,
        *,
        console_url: str | None,
        details: dict[str, Any],
        previous: JobHandle | None = None,
        reason: Callable[[], str | None] = lambda: None,
    ) -> JobHandle:
        """The handle of a remote job that is in ``status`` (its service says ``remote_status``),
        with the message that status calls for. ``reason`` is asked only when the job failed; the
        console link ends a failure message. ``details`` update those of ``previous``."""
        what = f"{self.job_noun} {job_id}"
        message = None
        if status == "failed":
            message = f"{what} ended {remote_status}: {reason() or 'no reason given'}"
            if console_url:
                message += f" ({console_url})"
        elif status == "cancelled":
            message = f"{what} was cancelled"
        elif status == "succeeded":
            message = f"{what} completed"
        return JobHandle(
            backend=self.name,
            job_id=job_id,
            console_url=console_url,
            status=status,
            message=message,
            details={**(previous.details if previous else {}), **details},
        )

    def reattach_or_rename(
        self, base: str, find: Callable[[str], tuple[Any, str] | None], max_length: int
    ) -> tuple[str, Any | None]:
        """The job to reattach to, or the free name to start one under.

        For services whose job names are unique forever (SageMaker, Azure ML): a job of this task
        that failed or was cancelled keeps its name, so a re-run starts ``<name>-r2``, ``-r3`` ...
        while a live or completed job is reattached to.

        :param find: the job called ``name`` and its :class:`JobHandle` status, or None.
        :param max_length: the service's longest job name.
        :return: ``(name, job)``; ``job`` is None when ``name`` is free.
        """
        for attempt in range(1, MAX_RERUNS + 1):
            name = base if attempt == 1 else rerun_name(base, attempt, max_length)
            found = find(name)
            if found is None:
                return name, None
            job, status = found
            if status not in ("failed", "cancelled"):
                return name, job
            self.log.info("%s %s of an earlier try %s: not reattaching to it", self.job_noun, name, status)
        raise TrainingJobFailed(
            f"{MAX_RERUNS} {self.job_noun}s named {base}[-rN] already failed; not starting another"
        )


def backend_class(name: str) -> type[TrainingBackend]:
    """The class of the backend called ``name`` (its module imports nothing heavy); unknown names
    list the valid ones."""
    path = BACKENDS.get(name)
    if path is None:
        raise ValueError(f"unknown training backend {name!r}; choose one of {sorted(BACKENDS)}")
    module_name, class_name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)


def get_backend(name: str, config: dict[str, Any] | None, log: logging.Logger) -> TrainingBackend:
    """Instantiate the backend called ``name``; unknown names list the valid ones, and a backend
    whose extra is not installed raises :class:`MissingExtraError` naming it (``cls.extra``)."""
    return backend_class(name)(config, log)


def form_keys_schema(names: Iterable[str] = BACKENDS, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """A JSON schema (for a DAG's ``Param``) of the backend settings a trigger form may set for the
    backends ``names``: an object of their :attr:`TrainingBackend.form_keys` (narrowed to ``keys``
    when given), nothing else (``additionalProperties: false``), or null. Airflow checks it when
    the run is triggered, so a forbidden key is refused, named, before anything runs;
    ``TrainModelOperator`` checks the chosen backend's own keys again at run time."""
    from airflow_mlops.core.trust import form_override_keys

    properties: dict[str, dict[str, Any]] = {}
    for name in names:
        cls = backend_class(name)
        allowed = form_override_keys(cls.form_keys, keys)
        for key in sorted(allowed):
            schema = dict(cls.form_keys[key])
            title = cls.title or cls.name
            note = f"{title}: {schema.pop('description', key)}"
            if key in properties:
                merged = properties[key]
                if {k: v for k, v in merged.items() if k != "description"} != schema:
                    merged = {"type": merged["type"], "description": merged["description"]}
                merged["description"] += f"; {note}"
                properties[key] = merged
            else:
                properties[key] = {**schema, "description": note}
    # propertyNames first: a forbidden key is reported as "'env' is not one of [<the keys>]", with a
    # short schema excerpt, where additionalProperties alone would print the whole schema
    names = {"enum": sorted(properties)} if properties else {"maxLength": 0}
    return {
        "type": ["object", "null"],
        "propertyNames": names,
        "properties": properties,
        "additionalProperties": False,
    }


# ---------------------------------------------------------------------- helpers


def check_config_keys(
    config: Mapping[str, Any], valid: frozenset[str], service: str, setting: str = "backend_config"
) -> None:
    """Refuse keys of ``setting`` (``backend_config``, a target's ``target_config``) that the
    service does not know, naming them, the closest valid key, and every valid key."""
    unknown = sorted(set(config) - valid)
    if not unknown:
        return
    hints = [
        f"{key!r} -> {close[0]!r}" for key in unknown if (close := difflib.get_close_matches(key, valid, 1))
    ]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    raise ValueError(f"{setting}: unknown {service} key(s) {unknown}{hint}; valid keys: {sorted(valid)}")


def job_status(remote: str | None, terminal: Mapping[str, str]) -> str:
    """The :class:`JobHandle` status of a remote job state, read from a trigger's map of the
    service's ended states to event statuses (each service's vocabulary is written once, in its
    trigger); any state not in the map is still running."""
    outcome = terminal.get(remote or "")
    return "running" if outcome is None else EVENT_STATUSES[outcome]


def job_name_for(spec: TrainingJobSpec) -> str:
    """The spec's job name, made valid on every service (see :func:`~airflow_mlops.core.lineage.safe_job_name`)."""
    return safe_job_name(spec.job_name or "mlops-train")


def rerun_name(base: str, attempt: int, max_length: int) -> str:
    """``<base>-r<attempt>``, ``base`` shortened so that the name fits ``max_length``."""
    suffix = f"-r{attempt}"
    return f"{base[: max_length - len(suffix)].rstrip('-')}{suffix}"


def require_entrypoint(spec: TrainingJobSpec) -> str:
    """The entrypoint's absolute path; it must be a file (its folder is the code shipped)."""
    entrypoint = os.path.abspath(spec.entrypoint)
    if not os.path.isfile(entrypoint):
        raise DataInputError(f"training entrypoint {spec.entrypoint!r} is not a file")
    return entrypoint


def require_output(directory: str, where: str, output_dir: str = "<output-dir>") -> str:
    """``directory`` if it holds ``model/`` and ``metrics.json``; else the job broke the entrypoint
    contract and :class:`TrainingJobFailed` says what is missing from ``where``.

    :param output_dir: how the entrypoint saw the output folder (``"<SM_MODEL_DIR>"``).
    """
    missing = [p for p in ("model", "metrics.json") if not os.path.exists(os.path.join(directory, p))]
    if missing:
        raise TrainingJobFailed(
            f"{where} has no {' and no '.join(missing)}: the entrypoint must write {output_dir}/model "
            f"(an MLflow model) and {output_dir}/metrics.json"
        )
    return directory


def source_files(source_dir: str) -> Iterator[tuple[str, bytes]]:
    """``(path relative to source_dir, content)`` of the code to ship, in a stable order, without
    caches, VCS folders and compiled files."""
    for root, dirs, files in os.walk(source_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_NAMES)
        for name in sorted(files):
            if name in SKIP_NAMES or name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                yield os.path.relpath(path, source_dir), fh.read()


def tar_gz(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A reproducible ``.tar.gz`` of ``(name, content)`` files: mode 0644, no owner, and zero
    times in the tar headers and the gzip header alike, so the same files give the same bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)
