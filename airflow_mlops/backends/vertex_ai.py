"""Train on Vertex AI (extra ``google``).

A ``CustomJob`` runs the entrypoint. On a prebuilt scikit-learn training container (default) the
entrypoint's folder is shipped as a Python source distribution (package ``mlops_trainer``,
uploaded to the staging bucket) and started with ``python -m mlops_trainer.<script>``; with a
user container (``container_image_uri``) the image is expected to hold the code and gets the
same arguments. ``base_output_directory`` is set so Vertex exports ``AIP_MODEL_DIR``
(``<base>/model/``); the script receives that folder's Cloud Storage FUSE path (``/gcs/...``) as
``--output-dir`` and the data URIs as FUSE paths too, so it needs no GCS client. The Google
provider's ``CustomJobHook`` creates, reads and cancels the job; the wait happens in the
triggerer (:class:`VertexAICustomJobTrigger`, over the provider's ``CustomJobAsyncHook``). See
docs/backends/vertex_ai.md.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import tarfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlops.backends.base import JobHandle, TrainingBackend, TrainingJobSpec
from airflow_mlops.exceptions import DataInputError, MlopsError, TrainingJobFailed, require_extra

if TYPE_CHECKING:
    import logging

DEFAULT_REGION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-4"
DEFAULT_EXECUTOR_IMAGE = "{prefix}-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest"
PACKAGE = "mlops_trainer"
_SKIP_NAMES = {"__pycache__", ".git", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store"}

# JobState names -> JobHandle.status
_STATUS = {
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
    "JOB_STATE_PAUSED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
}
# ... and -> the trigger event's status
_EVENT_STATUS = {"succeeded": "success", "failed": "failed", "cancelled": "cancelled"}

_CONFIG_KEYS = {
    "gcp_conn_id",
    "impersonation_chain",
    "project_id",
    "region",
    "staging_bucket",
    "executor_image_uri",
    "container_image_uri",
    "command",
    "machine_type",
    "replica_count",
    "accelerator_type",
    "accelerator_count",
    "boot_disk_size_gb",
    "service_account",
    "network",
    "labels",
    "requirements",
    "environment",
    "timeout_seconds",
}


def executor_image_for(region: str) -> str:
    """The prebuilt scikit-learn training image in the Artifact Registry multi-region nearest
    ``region`` (``europe-*`` -> europe, ``asia-*``/``australia-*`` -> asia, else us)."""
    prefix = "us"
    if region.startswith("europe-"):
        prefix = "europe"
    elif region.startswith(("asia-", "australia-")):
        prefix = "asia"
    return DEFAULT_EXECUTOR_IMAGE.format(prefix=prefix)


def fuse_path(uri: str) -> str:
    """``gs://bucket/key`` -> ``/gcs/bucket/key`` (Cloud Storage FUSE, mounted in every custom job)."""
    return "/gcs/" + uri[len("gs://") :]


def _split_gs(uri: str, what: str) -> tuple[str, str]:
    if not uri.startswith("gs://") or len(uri) <= 5:
        raise DataInputError(
            f"{what} must be a gs:// URI for the Vertex AI backend (the job reads it through Cloud "
            f"Storage FUSE), got {uri!r}; upload the data to Cloud Storage first"
        )
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def display_name_for(name: str) -> str:
    """Vertex display names are at most 128 characters."""
    return name if len(name) <= 128 else name[:119] + "-" + _digest(name)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _path_name(name: str) -> str:
    """A Cloud Storage path segment for the job (stable per job name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "mlops-train"
    return safe if safe == name else f"{safe[:100]}-{_digest(name)}"


def build_python_package(source_dir: str, requirements: list[str]) -> bytes:
    """A source distribution (``mlops_trainer-0.0.0.tar.gz``) whose package holds ``source_dir``.

    Reproducible (sorted names, zero mtimes): the same code gives the same bytes.
    """
    root = f"{PACKAGE}-0.0.0"
    setup_py = (
        "from setuptools import setup\n\n"
        "setup(\n"
        f"    name={PACKAGE!r},\n"
        '    version="0.0.0",\n'
        f"    packages=[{PACKAGE!r}],\n"
        f'    package_data={{{PACKAGE!r}: ["*", "**/*"]}},\n'
        f"    install_requires={requirements!r},\n"
        ")\n"
    )
    pkg_info = f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.0.0\n"
    members: list[tuple[str, bytes]] = [
        (f"{root}/setup.py", setup_py.encode()),
        (f"{root}/PKG-INFO", pkg_info.encode()),
    ]
    has_init = os.path.exists(os.path.join(source_dir, "__init__.py"))
    if not has_init:
        members.append((f"{root}/{PACKAGE}/__init__.py", b""))
    for base, dirs, files in os.walk(source_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_NAMES)
        for name in sorted(files):
            if name in _SKIP_NAMES or name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(base, name)
            with open(path, "rb") as fh:
                members.append((f"{root}/{PACKAGE}/{os.path.relpath(path, source_dir)}", fh.read()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for arcname, data in members:
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class VertexAICustomJobTrigger(BaseTrigger):
    """
    Wait for a Vertex AI ``CustomJob`` in the triggerer and fire one event when it ends.

    The Google provider's Vertex triggers wait for training *pipelines*, not custom jobs; this one
    polls ``GetCustomJob`` through the provider's ``CustomJobAsyncHook`` (async gRPC client, the
    event loop never blocks). Event: ``{"status": "success" | "failed" | "cancelled" | "timeout" |
    "error", "job_id", "message", "state"}``.

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
            "airflow_mlops.backends.vertex_ai.VertexAICustomJobTrigger",
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

    def _event(self, status: str, message: str, state: str | None) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_id": self.job_id, "message": message, "state": state})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobAsyncHook

        hook = CustomJobAsyncHook(gcp_conn_id=self.conn_id, impersonation_chain=self.impersonation_chain)
        deadline = None if self.timeout is None else time.monotonic() + float(self.timeout)
        state: str | None = None
        try:
            client = await hook.get_job_service_client(region=self.location)
            while True:
                job = await hook.get_custom_job(
                    project_id=self.project_id, location=self.location, job_id=self.job_id, client=client
                )
                if job.state.name != state:
                    state = job.state.name
                    self.log.info("Vertex AI custom job %s is %s", self.job_id, state)
                outcome = _STATUS.get(state)
                if outcome is not None:
                    message = f"Vertex AI custom job {job.name} ended {state}"
                    if job.error and job.error.message:
                        message += f": {job.error.message}"
                    yield self._event(_EVENT_STATUS[outcome], message, state)
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


class VertexAIBackend(TrainingBackend):
    """Runs the training entrypoint as a Vertex AI custom job.

    ``backend_config`` keys (see docs/backends/vertex_ai.md): ``staging_bucket`` (required,
    ``gs://bucket[/prefix]``); ``gcp_conn_id`` (``google_cloud_default``), ``project_id`` (default:
    the connection's), ``region`` (``us-central1``), ``executor_image_uri`` (prebuilt container;
    default: scikit-learn), or ``container_image_uri`` (+ optional ``command``) for a user container,
    ``machine_type``, ``replica_count``, ``accelerator_type``/``accelerator_count``,
    ``boot_disk_size_gb``, ``service_account``, ``network``, ``labels``, ``requirements`` (pip
    requirements of the package; default: ``requirements.txt`` beside the entrypoint, else
    ``mlflow``), ``environment``, ``timeout_seconds``, ``impersonation_chain``.
    """

    name = "vertex_ai"
    extra = "google"

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        super().__init__(config, log)
        require_extra(
            "airflow.providers.google.cloud.hooks.vertex_ai.custom_job",
            "The Vertex AI training backend",
            "google",
        )
        unknown = sorted(set(self.config) - _CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"backend_config: unknown Vertex AI key(s) {unknown}; valid keys: {sorted(_CONFIG_KEYS)}"
            )
        if not self.config.get("staging_bucket"):
            raise ValueError(
                "backend_config['staging_bucket'] (gs://bucket[/prefix]) is required for Vertex AI"
            )
        _split_gs(self.config["staging_bucket"], "backend_config['staging_bucket']")
        if int(self.config.get("replica_count", 1)) < 1:
            raise ValueError("backend_config['replica_count'] must be at least 1")
        if self.config.get("executor_image_uri") and self.config.get("container_image_uri"):
            raise ValueError(
                "backend_config: set executor_image_uri (prebuilt) or container_image_uri (own), not both"
            )
        self.conn_id: str = self.config.get("gcp_conn_id", "google_cloud_default")
        self.region: str = self.config.get("region", DEFAULT_REGION)

    def _hook(self):
        from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobHook

        return CustomJobHook(
            gcp_conn_id=self.conn_id, impersonation_chain=self.config.get("impersonation_chain")
        )

    def _gcs(self):
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        return GCSHook(gcp_conn_id=self.conn_id, impersonation_chain=self.config.get("impersonation_chain"))

    def _project(self, hook) -> str:
        project = self.config.get("project_id") or hook.project_id
        if not project:
            raise ValueError(
                "no Google Cloud project: set backend_config['project_id'] or the project of connection "
                f"{self.conn_id!r}"
            )
        return project

    def _base_output(self, job_name: str) -> str:
        return f"{self.config['staging_bucket'].rstrip('/')}/{_path_name(job_name)}"

    # ------------------------------------------------------------------ interface

    def build_custom_job(self, spec: TrainingJobSpec, package_uri: str | None):
        """The ``google.cloud.aiplatform_v1.CustomJob`` for ``spec``."""
        from google.cloud.aiplatform_v1.types import (
            ContainerSpec,
            CustomJob,
            CustomJobSpec,
            DiskSpec,
            EnvVar,
            GcsDestination,
            MachineSpec,
            PythonPackageSpec,
            Scheduling,
            WorkerPoolSpec,
        )
        from google.protobuf.duration_pb2 import Duration

        cfg = self.config
        job_name = spec.job_name or "mlops-train"
        base_output = self._base_output(job_name)
        _split_gs(spec.train_data, "train_data")
        args = ["--train", fuse_path(spec.train_data)]
        if spec.validation_data:
            _split_gs(spec.validation_data, "validation_data")
            args += ["--validation", fuse_path(spec.validation_data)]
        # AIP_MODEL_DIR is <base_output_directory>/model/: give the script its FUSE path.
        args += ["--params", json.dumps(spec.params, sort_keys=True)]
        args += ["--output-dir", fuse_path(f"{base_output}/model")]
        env = [EnvVar(name=str(k), value=str(v)) for k, v in sorted(cfg.get("environment", {}).items())]

        def pool(replicas: int) -> WorkerPoolSpec:
            machine = MachineSpec(machine_type=cfg.get("machine_type", DEFAULT_MACHINE_TYPE))
            if cfg.get("accelerator_type"):
                machine.accelerator_type = cfg["accelerator_type"]
                machine.accelerator_count = int(cfg.get("accelerator_count", 1))
            worker = WorkerPoolSpec(machine_spec=machine, replica_count=replicas)
            if cfg.get("boot_disk_size_gb"):
                worker.disk_spec = DiskSpec(boot_disk_size_gb=int(cfg["boot_disk_size_gb"]))
            if cfg.get("container_image_uri"):
                worker.container_spec = ContainerSpec(
                    image_uri=cfg["container_image_uri"],
                    command=list(cfg.get("command") or []),
                    args=args,
                    env=env,
                )
            else:
                module = f"{PACKAGE}.{os.path.splitext(os.path.basename(spec.entrypoint))[0]}"
                worker.python_package_spec = PythonPackageSpec(
                    executor_image_uri=cfg.get("executor_image_uri") or executor_image_for(self.region),
                    package_uris=[package_uri],
                    python_module=module,
                    args=args,
                    env=env,
                )
            return worker

        # Vertex runs pool 0 as the single chief; further replicas go in a second pool.
        replicas = int(cfg.get("replica_count", 1))
        pools = [pool(1)] + ([pool(replicas - 1)] if replicas > 1 else [])
        job_spec = CustomJobSpec(
            worker_pool_specs=pools,
            base_output_directory=GcsDestination(output_uri_prefix=base_output),
        )
        if cfg.get("service_account"):
            job_spec.service_account = cfg["service_account"]
        if cfg.get("network"):
            job_spec.network = cfg["network"]
        if cfg.get("timeout_seconds"):
            job_spec.scheduling = Scheduling(timeout=Duration(seconds=int(cfg["timeout_seconds"])))
        labels = {"airflow-mlops": "train", **{str(k): str(v) for k, v in cfg.get("labels", {}).items()}}
        return CustomJob(display_name=display_name_for(job_name), job_spec=job_spec, labels=labels)

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        job_name = spec.job_name or "mlops-train"
        hook = self._hook()
        project = self._project(hook)
        self.build_custom_job(spec, "gs://validate/only.tar.gz")  # bad input fails before any call

        existing = self._find_existing(hook, project, display_name_for(job_name))
        if existing is not None:
            self.log.info(
                "Vertex AI custom job %s (%s) already exists and is %s: reattaching instead of starting a second one",
                job_name,
                existing.name,
                existing.state.name,
            )
            return self._handle_from(existing, project)

        package_uri = None
        if not self.config.get("container_image_uri"):
            package_uri = self._upload_package(spec, job_name)
        custom_job = self.build_custom_job(spec, package_uri)
        self.log.info(
            "Creating Vertex AI custom job %s in %s/%s on %s x %s, output %s",
            custom_job.display_name,
            project,
            self.region,
            self.config.get("replica_count", 1),
            self.config.get("machine_type", DEFAULT_MACHINE_TYPE),
            custom_job.job_spec.base_output_directory.output_uri_prefix,
        )
        created = hook.create_custom_job(project_id=project, region=self.region, custom_job=custom_job)
        handle = self._handle_from(created, project)
        return handle if not handle.done else replace(handle, status="submitted")

    def poll(self, handle: JobHandle) -> JobHandle:
        hook = self._hook()
        project = handle.details["project_id"]
        job = hook.get_custom_job(project_id=project, region=self.region, custom_job=handle.job_id)
        return self._handle_from(job, project, handle)

    def trigger(self, handle: JobHandle, poll_interval: float) -> BaseTrigger | None:
        timeout = self.config.get("timeout_seconds")
        return VertexAICustomJobTrigger(
            conn_id=self.conn_id,
            project_id=handle.details["project_id"],
            location=self.region,
            job_id=handle.job_id,
            poll_interval=float(poll_interval),
            timeout=float(timeout) + 3600 if timeout else None,
            impersonation_chain=self.config.get("impersonation_chain"),
        )

    def handle_event(self, handle: JobHandle, event: dict[str, Any]) -> JobHandle:
        return self.reconcile_event(handle, event, "Vertex AI", "state")

    def fetch_output(self, handle: JobHandle, local_dir: str) -> str:
        model_dir = handle.details["model_dir"].rstrip("/") + "/"
        bucket, prefix = _split_gs(model_dir, "the job's model directory")
        gcs = self._gcs()
        names = [n for n in gcs.list(bucket, prefix=prefix) if not n.endswith("/")]
        self.log.info("Downloading %d file(s) of %s from %s", len(names), handle.job_id, model_dir)
        out = os.path.join(local_dir, "output")
        root = os.path.realpath(out)
        for name in names:
            target = os.path.realpath(os.path.join(root, name[len(prefix) :]))
            if not target.startswith(root + os.sep):
                raise TrainingJobFailed(f"refusing to download gs://{bucket}/{name} outside {out}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            gcs.download(bucket_name=bucket, object_name=name, filename=target)
        missing = [p for p in ("model", "metrics.json") if not os.path.exists(os.path.join(out, p))]
        if missing:
            raise TrainingJobFailed(
                f"{model_dir} has no {' and no '.join(missing)}: the entrypoint must write "
                "<AIP_MODEL_DIR>/model (an MLflow model) and <AIP_MODEL_DIR>/metrics.json"
            )
        return out

    def cancel(self, handle: JobHandle) -> None:
        self.log.info("Cancelling Vertex AI custom job %s", handle.job_id)
        try:
            self._hook().cancel_custom_job(
                project_id=handle.details["project_id"], region=self.region, custom_job=handle.job_id
            )
        except Exception as err:  # an ended job cannot be cancelled: nothing left to stop
            self.log.warning("Could not cancel Vertex AI custom job %s: %s", handle.job_id, err)

    # ------------------------------------------------------------------ helpers

    def _requirements(self, source_dir: str) -> list[str]:
        if self.config.get("requirements") is not None:
            return [str(r) for r in self.config["requirements"]]
        path = os.path.join(source_dir, "requirements.txt")
        if os.path.exists(path):
            with open(path) as fh:
                return [
                    line.strip() for line in fh if line.strip() and not line.strip().startswith(("#", "-"))
                ]
        return ["mlflow"]

    def _upload_package(self, spec: TrainingJobSpec, job_name: str) -> str:
        entrypoint = os.path.abspath(spec.entrypoint)
        if not os.path.isfile(entrypoint):
            raise DataInputError(f"training entrypoint {spec.entrypoint!r} is not a file")
        source_dir = os.path.dirname(entrypoint)
        data = build_python_package(source_dir, self._requirements(source_dir))
        uri = f"{self._base_output(job_name)}/code/{PACKAGE}-0.0.0.tar.gz"
        bucket, key = _split_gs(uri, "backend_config['staging_bucket']")
        self.log.info(
            "Uploading the training package (%d bytes, folder of %s) to %s", len(data), entrypoint, uri
        )
        self._gcs().upload(bucket_name=bucket, object_name=key, data=data, mime_type="application/gzip")
        return uri

    def _find_existing(self, hook, project: str, display_name: str):
        """The newest job of this name that is live or succeeded (a failed one is retried afresh)."""
        jobs = hook.list_custom_jobs(
            project_id=project,
            region=self.region,
            page_size=None,
            page_token=None,
            filter=f'display_name="{display_name}"',
            read_mask=None,
        )
        candidates = [
            job
            for job in jobs
            if job.display_name == display_name and _STATUS.get(job.state.name) not in ("failed", "cancelled")
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda job: job.create_time.timestamp() if job.create_time else 0)

    def _handle_from(self, job: Any, project: str, previous: JobHandle | None = None) -> JobHandle:
        state = job.state.name
        status = _STATUS.get(state, "running")
        job_id = job.name.rsplit("/", 1)[-1]
        message = None
        if status == "failed":
            reason = job.error.message if job.error and job.error.message else "no reason given"
            message = f"Vertex AI custom job {job_id} ended {state}: {reason}"
        elif status == "cancelled":
            message = f"Vertex AI custom job {job_id} was cancelled"
        elif status == "succeeded":
            message = f"Vertex AI custom job {job_id} succeeded"
        base = job.job_spec.base_output_directory.output_uri_prefix
        if not base:
            raise MlopsError(
                f"Vertex AI custom job {job.name} has no base_output_directory: cannot find its model"
            )
        details = dict(previous.details) if previous else {}
        details.update(
            {
                "resource_name": job.name,
                "project_id": project,
                "region": self.region,
                "state": state,
                "model_dir": base.rstrip("/") + "/model/",
            }
        )
        return JobHandle(
            backend=self.name,
            job_id=job_id,
            console_url=f"https://console.cloud.google.com/ai/platform/locations/{self.region}/training/{job_id}"
            f"?project={project}",
            status=status,
            message=message,
            details=details,
        )
