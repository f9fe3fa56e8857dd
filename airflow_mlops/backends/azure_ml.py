"""Train on Azure Machine Learning (extra ``azure``).

A *command job* (``azure.ai.ml.command``) runs the entrypoint with its folder as the job's code,
in a curated scikit-learn environment (or a given one), on a compute cluster (or serverless
compute). The data URIs become ``uri_file``/``uri_folder`` inputs, the output folder a
``uri_folder`` output named ``model_output`` that the script receives as ``--output-dir``. The
wait happens in the triggerer (:class:`~airflow_mlops.triggers.azure_ml.AzureMLJobTrigger`,
short ``jobs.get`` polls, never the blocking ``jobs.stream``); the model comes back with
``jobs.download(name, output_name="model_output")``. See docs/backends/azure_ml.md.
"""

from __future__ import annotations

import json
import os
import shlex
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
)
from airflow_mlops.exceptions import DataInputError
from airflow_mlops.triggers.azure_ml import TERMINAL_STATUSES

if TYPE_CHECKING:
    import logging

    from airflow.triggers.base import BaseTrigger

    from airflow_mlops.hooks.azure_ml import AzureMLHook

DEFAULT_ENVIRONMENT = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
DEFAULT_EXPERIMENT = "airflow-mlops"
OUTPUT_NAME = "model_output"
# Job names: letters, digits, "-" and "_", at most 255 characters.
MAX_JOB_NAME = 255
_DATA_FILE_SUFFIXES = (".parquet", ".pq", ".parq", ".csv", ".csv.gz", ".tsv", ".json", ".jsonl")
_REMOTE_SCHEMES = ("azureml://", "abfss://", "https://", "http://", "wasbs://", "wasb://", "adl://")

_CONFIG_KEYS = frozenset(
    {
        "azure_ml_conn_id",
        "compute",
        "instance_type",
        "instance_count",
        "environment",
        "experiment_name",
        "environment_variables",
        "tags",
        "timeout_seconds",
        "storage_account",
        "input_mode",
        "output_mode",
        "train_input_type",
        "validation_input_type",
    }
)


def input_type_for(uri: str) -> str:
    """``uri_file`` for a path that names a data file, ``uri_folder`` otherwise."""
    path = uri.split("?", 1)[0].rstrip("/")
    if uri.endswith("/"):
        return "uri_folder"
    return "uri_file" if path.lower().endswith(_DATA_FILE_SUFFIXES) else "uri_folder"


def azure_data_path(uri: str, what: str, storage_account: str | None) -> str:
    """The path an Azure ML ``Input`` accepts for ``uri``.

    ``azureml://``, ``abfss://``, ``https://``, ``wasbs://`` pass through; a local path or
    ``file://`` is uploaded by the SDK at submission; fsspec's ``abfs://container/path`` needs
    ``storage_account`` to become ``abfss://container@<account>.dfs.core.windows.net/path``.
    """
    if uri.startswith(_REMOTE_SCHEMES):
        return uri
    if uri.startswith(("abfs://", "az://")):
        rest = uri.split("://", 1)[1]
        container, _, path = rest.partition("/")
        if "@" in container:
            return f"abfss://{rest}"
        if not storage_account:
            raise DataInputError(
                f"{what} {uri!r} names no storage account: use abfss://<container>@<account>.dfs.core."
                "windows.net/<path>, an azureml:// datastore URI, or set backend_config['storage_account']"
            )
        return f"abfss://{container}@{storage_account}.dfs.core.windows.net/{path}"
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise DataInputError(
            f"{what} {uri!r} cannot be read by an Azure ML job: use azureml://, abfss://, https:// or a "
            "local path (uploaded at submission)"
        )
    if not os.path.exists(uri):
        raise DataInputError(
            f"{what} {uri!r} does not exist (local data is uploaded to Azure ML at submission)"
        )
    return os.path.abspath(uri)


class AzureMLBackend(TrainingBackend):
    """Runs the training entrypoint as an Azure ML command job.

    ``backend_config`` keys (see docs/backends/azure_ml.md): ``azure_ml_conn_id``
    (``azure_ml_default``), ``compute`` (a compute cluster; without it, serverless compute of
    ``instance_type``), ``instance_count``, ``environment`` (default: the curated scikit-learn
    environment), ``experiment_name``, ``environment_variables``, ``tags``, ``timeout_seconds``,
    ``storage_account`` (for ``abfs://`` URIs), ``input_mode``, ``output_mode``,
    ``train_input_type``/``validation_input_type`` (``uri_file``/``uri_folder``, default guessed).
    """

    name = "azure_ml"
    title = "Azure ML"
    job_noun = "Azure ML job"
    extra = "azure"
    requires = ("azure.ai.ml", "azure.identity")
    config_keys = _CONFIG_KEYS
    form_keys = {
        "instance_type": {
            "type": "string",
            "description": "serverless VM size (e.g. Standard_DS3_v2; ignored with a compute cluster)",
        },
        "instance_count": {"type": "integer", "minimum": 1, "description": "number of instances"},
        "timeout_seconds": {"type": "integer", "minimum": 1, "description": "time limit of the job"},
    }

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        super().__init__(config, log)
        if int(self.config.get("instance_count", 1)) < 1:
            raise ValueError("backend_config['instance_count'] must be at least 1")
        for key in ("train_input_type", "validation_input_type"):
            if self.config.get(key) not in (None, "uri_file", "uri_folder"):
                raise ValueError(f"backend_config[{key!r}] must be 'uri_file' or 'uri_folder'")
        self.conn_id: str = self.config.get("azure_ml_conn_id", "azure_ml_default")

    @cached_property
    def hook(self) -> AzureMLHook:
        from airflow_mlops.hooks.azure_ml import AzureMLHook

        return AzureMLHook(azure_ml_conn_id=self.conn_id)

    # ------------------------------------------------------------------ interface

    def validate(self, spec: TrainingJobSpec) -> None:
        require_entrypoint(spec)
        for channel, uri in self._channels(spec):
            azure_data_path(uri, f"{channel}_data", self.config.get("storage_account"))

    def build_job(self, spec: TrainingJobSpec, job_name: str):
        """The ``azure.ai.ml.entities.Command`` job for ``spec``."""
        from azure.ai.ml import Input, Output, command

        cfg = self.config
        entrypoint = require_entrypoint(spec)
        inputs: dict[str, Any] = {}
        parts = ["python", shlex.quote(os.path.basename(entrypoint))]
        for channel, uri in self._channels(spec):
            path = azure_data_path(uri, f"{channel}_data", cfg.get("storage_account"))
            kind = cfg.get(f"{channel}_input_type") or input_type_for(uri)
            kwargs = {"mode": cfg["input_mode"]} if cfg.get("input_mode") else {}
            inputs[channel] = Input(type=kind, path=path, **kwargs)
            parts += [f"--{channel}", "${{inputs." + channel + "}}"]
        parts += ["--params", shlex.quote(json.dumps(spec.params, sort_keys=True))]
        parts += ["--output-dir", "${{outputs." + OUTPUT_NAME + "}}"]
        out_kwargs = {"mode": cfg["output_mode"]} if cfg.get("output_mode") else {}
        compute = cfg.get("compute")
        job = command(
            name=job_name,
            display_name=spec.job_name or job_name,
            experiment_name=cfg.get("experiment_name", DEFAULT_EXPERIMENT),
            description=f"airflow-mlops training of {os.path.basename(entrypoint)}",
            code=os.path.dirname(entrypoint),
            command=" ".join(parts),
            inputs=inputs,
            outputs={OUTPUT_NAME: Output(type="uri_folder", **out_kwargs)},
            environment=cfg.get("environment", DEFAULT_ENVIRONMENT),
            environment_variables={str(k): str(v) for k, v in cfg.get("environment_variables", {}).items()}
            or None,
            compute=compute,
            instance_count=int(cfg.get("instance_count", 1)),
            instance_type=None if compute else cfg.get("instance_type"),
            timeout=int(cfg["timeout_seconds"]) if cfg.get("timeout_seconds") else None,
            tags={"airflow-mlops": "train", **{str(k): str(v) for k, v in cfg.get("tags", {}).items()}},
        )
        return job

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        self.validate(spec)
        job_name, existing = self._resolve_name(spec)
        if existing is not None:
            self.log.info(
                "Azure ML job %s already exists (%s): reattaching instead of starting a second one",
                job_name,
                existing.status,
            )
            return self._handle_from(existing)
        job = self.build_job(spec, job_name)
        self.log.info(
            "Submitting Azure ML command job %s: environment %s, compute %s, %s instance(s)",
            job_name,
            job.environment,
            job.compute or f"serverless {self.config.get('instance_type') or '(default size)'}",
            self.config.get("instance_count", 1),
        )
        created = self.hook.get_conn().jobs.create_or_update(job)
        handle = self._handle_from(created)
        if handle.status == "succeeded":  # a brand-new job is never done: trust only later polls
            handle = replace(handle, status="submitted")
        return handle

    def find_job(self, spec: TrainingJobSpec) -> JobHandle | None:
        _, existing = self._resolve_name(spec)
        return None if existing is None else self._handle_from(existing)

    def poll(self, handle: JobHandle) -> JobHandle:
        job = self.hook.get_conn().jobs.get(handle.job_id)
        return self._handle_from(job, handle)

    def trigger(self, handle: JobHandle, poll_interval: float) -> BaseTrigger | None:
        from airflow_mlops.triggers.azure_ml import AzureMLJobTrigger

        timeout = self.config.get("timeout_seconds")
        return AzureMLJobTrigger(
            conn_id=self.conn_id,
            job_name=handle.job_id,
            poll_interval=float(poll_interval),
            # the job's own limit plus time to queue and provision; None: wait as long as it runs
            timeout=float(timeout) + 3600 if timeout else None,
        )

    def handle_event(self, handle: JobHandle, event: dict[str, Any]) -> JobHandle:
        return self.reconcile_event(handle, event, "azure_status")

    def fetch_output(self, handle: JobHandle, local_dir: str) -> str:
        os.makedirs(local_dir, exist_ok=True)
        self.log.info("Downloading output %s of Azure ML job %s to %s", OUTPUT_NAME, handle.job_id, local_dir)
        self.hook.get_conn().jobs.download(handle.job_id, output_name=OUTPUT_NAME, download_path=local_dir)
        out = os.path.join(local_dir, "named-outputs", OUTPUT_NAME)
        return require_output(out, f"output {OUTPUT_NAME} of Azure ML job {handle.job_id}")

    def cancel(self, handle: JobHandle) -> None:
        self.log.info("Cancelling Azure ML job %s", handle.job_id)
        try:
            self.hook.get_conn().jobs.begin_cancel(handle.job_id)
        except Exception as err:  # an ended job cannot be cancelled: nothing left to stop
            self.log.warning("Could not cancel Azure ML job %s: %s", handle.job_id, err)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _channels(spec: TrainingJobSpec) -> list[tuple[str, str]]:
        return [
            (c, uri) for c, uri in (("train", spec.train_data), ("validation", spec.validation_data)) if uri
        ]

    def _resolve_name(self, spec: TrainingJobSpec) -> tuple[str, Any | None]:
        """The job of this task to reattach to, or the free name to start one under (job names
        are unique: after a failed try, ``<name>-r2`` ...)."""
        from azure.core.exceptions import ResourceNotFoundError

        def find(name: str) -> tuple[Any, str] | None:
            try:
                job = self.hook.get_conn().jobs.get(name)
            except ResourceNotFoundError:
                return None
            return job, job_status(_status_text(job), TERMINAL_STATUSES)

        return self.reattach_or_rename(job_name_for(spec), find, MAX_JOB_NAME)

    def _handle_from(self, job: Any, previous: JobHandle | None = None) -> JobHandle:
        az_status = _status_text(job)
        return self.job_handle(
            job.name,
            az_status,
            job_status(az_status, TERMINAL_STATUSES),
            console_url=getattr(job, "studio_url", None) or (previous.console_url if previous else None),
            details={"azure_status": az_status, "output_name": OUTPUT_NAME, "conn_id": self.conn_id},
            previous=previous,
            reason=lambda: self._failure_reason(job.name),
        )

    def _failure_reason(self, job_name: str) -> str | None:
        """The run's error message, best effort (None when it cannot be read).

        ``Job`` entities carry no error, and the SDK's only way to the run's error is its run
        history client, ``jobs._runs_operations`` (private; ``jobs.get`` itself uses it for
        pipeline child jobs). Isolated here: if a new SDK moves it, failures lose their reason and
        keep the studio link, nothing else changes.
        """
        try:
            run = self.hook.get_conn().jobs._runs_operations.get_run(job_name)
            error = getattr(getattr(run, "error", None), "error", None)
            return getattr(error, "message", None)
        except Exception as err:
            self.log.info("No failure reason for Azure ML job %s from run history: %s", job_name, err)
            return None


def _status_text(job: Any) -> str:
    return str(job.status) if job.status is not None else "Unknown"
