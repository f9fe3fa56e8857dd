"""Train on Vertex AI (extra ``google``).

A ``CustomJob`` runs the entrypoint. On a prebuilt scikit-learn training container (default) the
entrypoint's folder is shipped as a Python source distribution (package ``mlops_trainer``,
uploaded to the staging bucket) and started with ``python -m mlops_trainer.<script>``; with a
user container (``container_image_uri``) the image is expected to hold the code and gets the
same arguments. ``base_output_directory`` is set so Vertex exports ``AIP_MODEL_DIR``
(``<base>/model/``); the script receives that folder's Cloud Storage FUSE path (``/gcs/...``) as
``--output-dir`` and the data URIs as FUSE paths too, so it needs no GCS client. The Google
provider's ``CustomJobHook`` creates, reads and cancels the job; the wait happens in the
triggerer (:class:`~airflow_mlops.triggers.vertex_ai.VertexAICustomJobTrigger`). See
docs/backends/vertex_ai.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.backends.base import (
    JobHandle,
    TrainingBackend,
    TrainingJobSpec,
    job_name_for,
    job_status,
    require_entrypoint,
    require_output,
    source_files,
    tar_gz,
)
from airflow_mlops.exceptions import DataInputError, MlopsError, TrainingJobFailed
from airflow_mlops.triggers.vertex_ai import TERMINAL_STATES

if TYPE_CHECKING:
    import logging

    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobHook
    from airflow.triggers.base import BaseTrigger

DEFAULT_REGION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-4"
DEFAULT_EXECUTOR_IMAGE = "{prefix}-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest"
PACKAGE = "mlops_trainer"

_CONFIG_KEYS = frozenset(
    {
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
)


def executor_image_for(region: str) -> str:
    """The prebuilt scikit-learn training image in the Artifact Registry multi-region nearest
    ``region`` (``europe-*`` -> europe, ``asia-*``/``australia-*`` -> asia, else us)."""
    prefix = "us"
    if region.startswith("europe-"):
        prefix = "europe"
    elif region.startswith(("asia-", "australia-")):
        prefix = "asia"
    return DEFAULT_EXECUTOR_IMAGE.format(prefix=prefix)


def google_hook(hook_class: Any, conn_id: str, config: dict[str, Any]) -> Any:
    """A Google provider hook on ``conn_id``, impersonating ``config['impersonation_chain']``."""
    return hook_class(gcp_conn_id=conn_id, impersonation_chain=config.get("impersonation_chain"))


def google_project(config: dict[str, Any], hook: Any, conn_id: str, setting: str) -> str:
    """``config['project_id']``, else the project of the connection; an error naming both otherwise."""
    project = config.get("project_id") or hook.project_id
    if not project:
        raise ValueError(
            f"no Google Cloud project: set {setting}['project_id'] or the project of connection {conn_id!r}"
        )
    return project


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


def build_python_package(source_dir: str, requirements: list[str]) -> bytes:
    """A source distribution (``mlops_trainer-0.0.0.tar.gz``) whose package holds ``source_dir``.

    Reproducible: the same code gives the same bytes.
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
    members += [(f"{root}/{PACKAGE}/{relpath}", data) for relpath, data in source_files(source_dir)]
    return tar_gz(members)


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
    title = "Vertex AI"
    job_noun = "Vertex AI custom job"
    extra = "google"
    requires = ("airflow.providers.google.cloud.hooks.vertex_ai.custom_job",)
    config_keys = _CONFIG_KEYS
    form_keys = {
        "machine_type": {"type": "string", "description": f"machine type (default {DEFAULT_MACHINE_TYPE})"},
        "replica_count": {"type": "integer", "minimum": 1, "description": "number of replicas"},
        "accelerator_type": {"type": "string", "description": "GPU type (e.g. NVIDIA_TESLA_T4)"},
        "accelerator_count": {"type": "integer", "minimum": 0, "description": "GPUs per replica"},
        "boot_disk_size_gb": {"type": "integer", "minimum": 1, "description": "boot disk, GB"},
        "timeout_seconds": {"type": "integer", "minimum": 1, "description": "time limit of the job"},
    }

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        super().__init__(config, log)
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

    @cached_property
    def hook(self) -> CustomJobHook:
        from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobHook

        return google_hook(CustomJobHook, self.conn_id, self.config)

    @cached_property
    def gcs(self) -> GCSHook:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        return google_hook(GCSHook, self.conn_id, self.config)

    @cached_property
    def project(self) -> str:
        return google_project(self.config, self.hook, self.conn_id, "backend_config")

    def _base_output(self, job_name: str) -> str:
        return f"{self.config['staging_bucket'].rstrip('/')}/{job_name}"

    # ------------------------------------------------------------------ interface

    def validate(self, spec: TrainingJobSpec) -> None:
        if not self.config.get("container_image_uri"):  # a user container holds its own code
            require_entrypoint(spec)
        _split_gs(spec.train_data, "train_data")
        if spec.validation_data:
            _split_gs(spec.validation_data, "validation_data")

    def build_custom_job(self, spec: TrainingJobSpec, package_uri: str | None):
        """The ``google.cloud.aiplatform_v1.CustomJob`` for a validated ``spec``; ``package_uri``
        is the uploaded source distribution (None with a user container)."""
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
        if not (package_uri or cfg.get("container_image_uri")):
            raise ValueError("build_custom_job needs the package URI unless a user container is set")
        job_name = job_name_for(spec)
        base_output = self._base_output(job_name)
        args = ["--train", fuse_path(spec.train_data)]
        if spec.validation_data:
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
        return CustomJob(display_name=job_name, job_spec=job_spec, labels=labels)

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        self.validate(spec)
        job_name = job_name_for(spec)
        existing = self._find_existing(job_name)
        if existing is not None:
            self.log.info(
                "Vertex AI custom job %s (%s) already exists and is %s: reattaching instead of starting a second one",
                job_name,
                existing.name,
                existing.state.name,
            )
            return self._handle_from(existing)

        package_uri = None
        if not self.config.get("container_image_uri"):
            package_uri = self._upload_package(spec, job_name)
        custom_job = self.build_custom_job(spec, package_uri)
        self.log.info(
            "Creating Vertex AI custom job %s in %s/%s on %s x %s, output %s",
            custom_job.display_name,
            self.project,
            self.region,
            self.config.get("replica_count", 1),
            self.config.get("machine_type", DEFAULT_MACHINE_TYPE),
            custom_job.job_spec.base_output_directory.output_uri_prefix,
        )
        created = self.hook.create_custom_job(
            project_id=self.project, region=self.region, custom_job=custom_job
        )
        handle = self._handle_from(created)
        return handle if not handle.done else replace(handle, status="submitted")

    def find_job(self, spec: TrainingJobSpec) -> JobHandle | None:
        existing = self._find_existing(job_name_for(spec))
        return None if existing is None else self._handle_from(existing)

    def poll(self, handle: JobHandle) -> JobHandle:
        project = handle.details["project_id"]
        job = self.hook.get_custom_job(project_id=project, region=self.region, custom_job=handle.job_id)
        return self._handle_from(job, handle)

    def trigger(self, handle: JobHandle, poll_interval: float) -> BaseTrigger | None:
        from airflow_mlops.triggers.vertex_ai import VertexAICustomJobTrigger

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
        return self.reconcile_event(handle, event, "state")

    def fetch_output(self, handle: JobHandle, local_dir: str) -> str:
        model_dir = handle.details["model_dir"].rstrip("/") + "/"
        bucket, prefix = _split_gs(model_dir, "the job's model directory")
        names = [n for n in self.gcs.list(bucket, prefix=prefix) if not n.endswith("/")]
        self.log.info("Downloading %d file(s) of %s from %s", len(names), handle.job_id, model_dir)
        out = os.path.join(local_dir, "output")
        root = os.path.realpath(out)
        for name in names:
            target = os.path.realpath(os.path.join(root, name[len(prefix) :]))
            if not target.startswith(root + os.sep):
                raise TrainingJobFailed(f"refusing to download gs://{bucket}/{name} outside {out}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.gcs.download(bucket_name=bucket, object_name=name, filename=target)
        return require_output(out, model_dir, "<AIP_MODEL_DIR>")

    def cancel(self, handle: JobHandle) -> None:
        self.log.info("Cancelling Vertex AI custom job %s", handle.job_id)
        try:
            self.hook.cancel_custom_job(
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
        entrypoint = require_entrypoint(spec)
        source_dir = os.path.dirname(entrypoint)
        data = build_python_package(source_dir, self._requirements(source_dir))
        uri = f"{self._base_output(job_name)}/code/{PACKAGE}-0.0.0.tar.gz"
        bucket, key = _split_gs(uri, "backend_config['staging_bucket']")
        self.log.info(
            "Uploading the training package (%d bytes, folder of %s) to %s", len(data), entrypoint, uri
        )
        self.gcs.upload(bucket_name=bucket, object_name=key, data=data, mime_type="application/gzip")
        return uri

    def _find_existing(self, display_name: str) -> Any | None:
        """The newest job of this name that is live or succeeded (Vertex display names are not
        unique: a failed or cancelled one stays listed, and a re-run trains afresh)."""
        jobs = self.hook.list_custom_jobs(
            project_id=self.project,
            region=self.region,
            page_size=None,
            page_token=None,
            filter=f'display_name="{display_name}"',
            read_mask=None,
        )
        candidates = [
            job
            for job in jobs
            if job.display_name == display_name
            and job_status(job.state.name, TERMINAL_STATES) not in ("failed", "cancelled")
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda job: job.create_time.timestamp() if job.create_time else 0)

    def _handle_from(self, job: Any, previous: JobHandle | None = None) -> JobHandle:
        state = job.state.name
        job_id = job.name.rsplit("/", 1)[-1]
        project = previous.details["project_id"] if previous else self.project
        base = job.job_spec.base_output_directory.output_uri_prefix
        if not base:
            raise MlopsError(
                f"Vertex AI custom job {job.name} has no base_output_directory: cannot find its model"
            )
        return self.job_handle(
            job_id,
            state,
            job_status(state, TERMINAL_STATES),
            console_url=f"https://console.cloud.google.com/ai/platform/locations/{self.region}/training/"
            f"{job_id}?project={project}",
            details={
                "resource_name": job.name,
                "project_id": project,
                "region": self.region,
                "state": state,
                "model_dir": base.rstrip("/") + "/model/",
            },
            previous=previous,
            reason=lambda: job.error.message if job.error else None,
        )
