"""Train a model with the entrypoint contract on any backend and register it in MLflow with lineage."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.backends.base import (
    BACKENDS,
    JobHandle,
    TrainingBackend,
    TrainingJobSpec,
    backend_class,
    get_backend,
)
from airflow_mlops.core.trust import check_overrides, form_override_keys, mentions_run_input
from airflow_mlops.exceptions import DataInputError, ForbiddenInputError, MlopsError, TrainingJobFailed
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.links.mlflow import MlflowModelVersionLink, MlflowRunLink
from airflow_mlops.links.training import TrainingJobConsoleLink
from airflow_mlops.templating import is_templated, json_object_arg

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

_DEFERRED_KEY = "training_job"  # XCom copy of the deferral kwargs (handle, info)


class TrainModelOperator(BaseOperator):
    """
    Train a model with the training entrypoint and register it as a new MLflow model version.

    The entrypoint (``include/training/train.py`` or any script following docs/training.md) runs
    on ``backend``: ``"local"`` (a subprocess on the worker, its output in the task log),
    ``"sagemaker"``, ``"vertex_ai"`` or ``"azure_ml"``. When the job has finished, its model
    directory and ``metrics.json`` are logged to one MLflow run (the model files as written by
    the job) and registered as a new version of ``registered_model_name``, tagged with its lineage:
    data URIs and content hashes, code version and entrypoint hash, params, backend and job id,
    dag/run/task ids (tag names in :mod:`airflow_mlops.core.tags`). A failed job raises
    :class:`~airflow_mlops.exceptions.TrainingJobFailed` with the job's error and registers nothing.

    The job name is the same for every try of one task instance, so a backend that can
    (the cloud ones) reattaches to the job a previous try started instead of training twice.

    :param entrypoint: path of the training script. A relative path is looked up from the
        working directory, then the DAG file's folder and its parent (``dags/`` next to
        ``include/``).
    :param train_data: URI of the training data (file or folder of parquet/CSV). Templated.
    :param registered_model_name: MLflow registered model to add the version to.
    :param hyperparameters: JSON-serialisable dict passed to the entrypoint as ``--params``
        (``target``, ``model``, ``seed`` and model hyper-parameters), or a JSON string. Templated.
        (Not ``params``: that name belongs to Airflow's DAG/task params.)
    :param validation_data: URI of the validation data. Templated.
    :param experiment_name: MLflow experiment of the run (default: ``registered_model_name``).
    :param backend: where to train. Templated, so a DAG's Params form can choose it.
    :param backend_config: backend settings (see the backend's docs), the DAG author's side of the
        trust boundary: interpreter, environment, image, role, service account, connection ids,
        output locations. Templated (e.g. from Airflow Variables), but never from the run's form:
        a template that reads ``params`` or ``dag_run`` is refused when the DAG is parsed.
    :param backend_configs: ``{backend name: settings}`` for a DAG whose form chooses the backend:
        the entry of the chosen backend is used (instead of ``backend_config``; the same rules).
    :param backend_overrides: backend settings a run's trigger form may set, merged over the DAG's
        (``"{{ params.backend_config | tojson }}"``). Only the chosen backend's sizing keys
        (:attr:`~airflow_mlops.backends.base.TrainingBackend.form_keys`: instance type and count,
        disk, time limits), narrowed by ``allowed_overrides``; any other key fails the task,
        naming it, before anything is read or started. Templated.
    :param allowed_overrides: the keys the DAG lets its form set (default: every sizing key of the
        backend). Keys that choose code, identity or outputs are never allowed.
    :param mlflow_conn_id: MLflow connection.
    :param deferrable: wait for a remote job in the triggerer instead of holding a worker slot.
        Default (None): cloud backends defer (their jobs run for minutes to hours; pass False on a
        deployment without a triggerer); the local backend follows ``[operators]
        default_deferrable`` (it has no trigger, so it always waits in the worker).
    :param poll_interval: seconds between status checks of a remote job.
    :return: ``{backend, job_id, console_url, run_id, model_uri, model_name, model_version, metrics}``
    """

    template_fields: Sequence[str] = (
        "train_data",
        "validation_data",
        "hyperparameters",
        "backend",
        "backend_config",
        "backend_configs",
        "backend_overrides",
        "registered_model_name",
        "experiment_name",
    )
    template_fields_renderers = {
        "hyperparameters": "json",
        "backend_config": "json",
        "backend_configs": "json",
        "backend_overrides": "json",
    }
    operator_extra_links = (MlflowRunLink(), MlflowModelVersionLink(), TrainingJobConsoleLink())
    ui_color = "#e8f6f3"

    def __init__(
        self,
        *,
        entrypoint: str,
        train_data: str,
        registered_model_name: str,
        hyperparameters: dict[str, Any] | str | None = None,
        validation_data: str | None = None,
        experiment_name: str | None = None,
        backend: str = "local",
        backend_config: dict[str, Any] | str | None = None,
        backend_configs: Mapping[str, Mapping[str, Any]] | None = None,
        backend_overrides: dict[str, Any] | str | None = None,
        allowed_overrides: Collection[str] | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not entrypoint:
            raise ValueError("entrypoint is required (path of the training script)")
        if not train_data:
            raise ValueError("train_data is required")
        if not registered_model_name:
            raise ValueError("registered_model_name is required")
        if not is_templated(backend) and backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
        if hyperparameters is not None and not isinstance(hyperparameters, (dict, str)):
            raise ValueError(
                f"hyperparameters must be a dict or a JSON string, got {type(hyperparameters).__name__}"
            )
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        _check_dag_side(backend_config, backend_configs, allowed_overrides)
        self.entrypoint = entrypoint
        self.train_data = train_data
        self.registered_model_name = registered_model_name
        self.hyperparameters = hyperparameters
        self.validation_data = validation_data
        self.experiment_name = experiment_name
        self.backend = backend
        self.backend_config = backend_config
        self.backend_configs = backend_configs
        self.backend_overrides = backend_overrides
        self.allowed_overrides = None if allowed_overrides is None else sorted(allowed_overrides)
        self.mlflow_conn_id = mlflow_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        # What on_kill needs: the backend, the spec it was given, and the job's handle once known.
        self._backend: TrainingBackend | None = None
        self._spec: TrainingJobSpec | None = None
        self._handle: JobHandle | None = None

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    # ------------------------------------------------------------------ arguments at run time

    def _hyperparameters(self) -> dict[str, Any]:
        return json_object_arg("hyperparameters", self.hyperparameters)

    def _backend_config(self, name: str) -> dict[str, Any]:
        """The DAG's settings for backend ``name`` with the run's allowed overrides on top.

        :raises ForbiddenInputError: an override the form may not set, named.
        """
        if self.backend_configs is not None:
            config = json_object_arg(f"backend_configs[{name!r}]", self.backend_configs.get(name))
        else:
            config = json_object_arg("backend_config", self.backend_config)
        overrides = json_object_arg("backend_overrides", self.backend_overrides)
        if not overrides:
            return config
        try:
            cls = backend_class(name)
        except ValueError as err:
            raise DataInputError(str(err)) from None
        allowed = form_override_keys(cls.form_keys, self.allowed_overrides)
        try:
            overrides = check_overrides(overrides, allowed, service=f"the {cls.title or cls.name} backend")
        except ValueError as err:
            raise ForbiddenInputError(f"backend_overrides: {err}") from None
        self.log.info("Backend settings from the run: %s", json.dumps(overrides, sort_keys=True))
        return {**config, **overrides}

    def _resolve_entrypoint(self, context: Context) -> str:
        path = os.path.expanduser(str(self.entrypoint))
        candidates = [path]
        if not os.path.isabs(path):
            candidates = [os.path.abspath(path)]
            dag = context.get("dag")
            fileloc = getattr(dag, "fileloc", None)
            if fileloc:
                folder = os.path.dirname(os.path.abspath(fileloc))
                candidates += [os.path.join(folder, path), os.path.join(os.path.dirname(folder), path)]
        for candidate in candidates:
            if os.path.isfile(candidate):
                return candidate
        raise DataInputError(f"training entrypoint {self.entrypoint!r} not found (looked at {candidates})")

    def _should_defer(self, backend: str) -> bool:
        if self.deferrable is not None:
            return bool(self.deferrable)
        if backend != "local":
            # Cloud jobs run for minutes to hours: waiting in the triggerer frees the worker slot.
            return True
        from airflow.providers.common.compat.sdk import conf

        return conf.getboolean("operators", "default_deferrable", fallback=False)

    def _get_backend(self, name: str, config: dict[str, Any]) -> TrainingBackend:
        """The backend called ``name``; a bad name or ``backend_config`` fails without retries, a
        missing extra raises ``MissingExtraError`` naming it (from the backend class)."""
        try:
            backend = get_backend(name, config, self.log)
        except ValueError as err:
            raise DataInputError(str(err)) from err
        self._backend = backend
        return backend

    # ------------------------------------------------------------------ execution

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core import lineage
        from airflow_mlops.io import hash_table
        from airflow_mlops.trust import check_data_location

        backend_name = str(self.backend).strip()
        params = self._hyperparameters()
        entrypoint = self._resolve_entrypoint(context)
        ti = context["ti"]
        job_name = lineage.job_name(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))
        spec = TrainingJobSpec(
            entrypoint=entrypoint,
            train_data=str(self.train_data),
            validation_data=str(self.validation_data) if self.validation_data else None,
            params=params,
            job_name=job_name,
        )
        # A bad backend, config or input fails here, before the data is read for its hash.
        backend = self._get_backend(backend_name, self._backend_config(backend_name))
        backend.validate(spec)
        check_data_location(spec.train_data, "train_data")
        if spec.validation_data:
            check_data_location(spec.validation_data, "validation_data")
        earlier = self._registered_earlier(context, spec)
        if earlier is not None:
            return earlier
        # Hash the inputs before the job runs: the lineage records the data the job was given.
        train_hash = hash_table(spec.train_data)
        validation_hash = hash_table(spec.validation_data) if spec.validation_data else None
        info = {
            "spec": spec.to_dict(),
            "code_version": lineage.code_version(entrypoint),
            "code_hash": lineage.file_hash(entrypoint),
            "train_hash": train_hash,
            "validation_hash": validation_hash,
        }
        self.log.info(
            "Training %s with %s on backend %s as job %s (data %s, %s); params %s",
            self.registered_model_name,
            entrypoint,
            backend_name,
            job_name,
            spec.train_data,
            train_hash,
            json.dumps(params, sort_keys=True, default=str),
        )
        self._spec = spec
        handle = backend.submit(spec)
        self._handle = handle
        TrainingJobConsoleLink.persist(context, handle.console_url)
        if not handle.done:
            trigger = (
                backend.trigger(handle, self.poll_interval) if self._should_defer(backend_name) else None
            )
            if trigger is not None:
                self.log.info("Job %s is %s: deferring until it ends", handle.job_id, handle.status)
                # The triggerer hands these kwargs back, but `dag.test()`/`airflow dags test` run the
                # trigger inline and resume with the event only: keep a copy in XCom for that case.
                ti.xcom_push(key=_DEFERRED_KEY, value={"handle": handle.to_dict(), "info": info})
                self.defer(
                    trigger=trigger,
                    method_name="execute_complete",
                    kwargs={"handle": handle.to_dict(), "info": info},
                )
            handle = self._wait(backend, handle)
        return self._fetch_and_register(context, backend, handle, info)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        handle: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Resume after the trigger fired; ``event`` holds at least ``status`` and ``message``."""
        if handle is None or info is None:
            ti = context["ti"]
            saved = ti.xcom_pull(task_ids=ti.task_id, key=_DEFERRED_KEY, map_indexes=ti.map_index) or {}
            handle, info = handle or saved.get("handle"), info or saved.get("info")
        if handle is None or info is None:
            raise MlopsError("execute_complete called without the job handle saved at deferral")
        job = JobHandle.from_dict(handle)
        backend = self._get_backend(job.backend, self._backend_config(job.backend))
        self._handle = job
        job = backend.handle_event(job, event or {})
        self._handle = job
        self.log.info("Job %s ended: %s %s", job.job_id, job.status, job.message or "")
        return self._fetch_and_register(context, backend, job, info)

    def _wait(self, backend: TrainingBackend, handle: JobHandle) -> JobHandle:
        self.log.info(
            "Waiting for job %s in the worker (polling every %ss)", handle.job_id, self.poll_interval
        )
        while not handle.done:
            time.sleep(self.poll_interval)
            handle = backend.poll(handle)
            self._handle = handle
            self.log.info("Job %s: %s", handle.job_id, handle.status)
        return handle

    def on_kill(self) -> None:
        """Cancel the job this try submitted or reattached to, and nothing else."""
        backend, handle, spec = self._backend, self._handle, self._spec
        if handle is None and backend is not None and spec is not None:
            # Killed inside submit(): the job may exist although its handle never came back.
            try:
                handle = backend.find_job(spec)
            except Exception as err:
                self.log.warning("Cannot look up training job %s to cancel it: %s", spec.job_name, err)
                return
        if backend is None or handle is None:
            self.log.info("No training job was submitted: nothing to cancel")
            return
        if handle.done:
            self.log.info(
                "Training job %s already ended (%s): nothing to cancel", handle.job_id, handle.status
            )
            return
        backend.cancel(handle)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        from airflow_mlops.openlineage import training_lineage

        return training_lineage(self)

    # ------------------------------------------------------------------ after the job

    def _fetch_and_register(
        self, context: Context, backend: TrainingBackend, handle: JobHandle, info: dict[str, Any]
    ) -> dict[str, Any]:
        if handle.status != "succeeded":
            self.log.error("Training job %s %s; nothing is registered", handle.job_id, handle.status)
            raise TrainingJobFailed(
                f"training job {handle.job_id} on {handle.backend} {handle.status}: {handle.message or 'no message'}"
            )
        with tempfile.TemporaryDirectory(prefix="mlops-train-output-") as tmp:
            output = backend.fetch_output(handle, tmp)
            result = self._register(context, handle, info, output)
        self._lineage = {**info, "result": result, "registry_uri": self.hook.registry_uri}
        return result

    def _registered_earlier(self, context: Context, spec: TrainingJobSpec) -> dict[str, Any] | None:
        """The result of an earlier try of this task instance that registered its version (a
        retry after a failure past the registration, a cleared task): that version, without a
        second training job (on a cloud backend, a second bill)."""
        from airflow_mlops.core import tags

        ti = context["ti"]
        name = str(self.registered_model_name)
        origin = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id}
        earlier = self.hook.earlier_registration(name, origin, run_name=spec.job_name)
        if earlier is None:
            return None
        self.log.warning(
            "%s v%s was registered by an earlier try of this task instance (run %s): returning it "
            "without training again; to train anew, trigger a new DAG run",
            name,
            earlier.version,
            earlier.run_id,
        )
        found = earlier.tags
        result = self._result(
            context,
            name,
            earlier.version,
            earlier.run_id,
            earlier.experiment_id,
            job=(found.get(tags.BACKEND), found.get(tags.JOB_ID), found.get(tags.JOB_CONSOLE_URL)),
            metrics=json.loads(found.get(tags.METRICS) or "{}"),
        )
        self._lineage = {
            "spec": spec.to_dict(),
            "train_hash": found.get(tags.TRAIN_DATA_HASH),
            "validation_hash": found.get(tags.VALIDATION_DATA_HASH),
            "result": result,
            "registry_uri": self.hook.registry_uri,
        }
        return result

    def _register(
        self, context: Context, handle: JobHandle, info: dict[str, Any], output: str
    ) -> dict[str, Any]:
        from airflow_mlops.core import lineage

        spec = TrainingJobSpec.from_dict(info["spec"])
        model_dir = os.path.join(output, "model")
        if not os.path.isfile(os.path.join(model_dir, "MLmodel")):
            raise TrainingJobFailed(
                f"training job {handle.job_id} succeeded but wrote no MLflow model at model/ "
                f"(found {sorted(os.listdir(output))}); nothing is registered"
            )
        try:
            metrics = lineage.read_metrics(os.path.join(output, "metrics.json"))
        except ValueError as err:
            raise TrainingJobFailed(f"training job {handle.job_id}: {err}; nothing is registered") from err
        ti = context["ti"]
        tags = lineage.lineage_tags(
            entrypoint=os.path.basename(spec.entrypoint),
            code_version=info["code_version"],
            code_hash=info["code_hash"],
            train_data=spec.train_data,
            train_hash=info["train_hash"],
            validation_data=spec.validation_data,
            validation_hash=info.get("validation_hash"),
            params=spec.params,
            metrics=metrics,
            backend=handle.backend,
            job_id=handle.job_id,
            console_url=handle.console_url,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
        )
        name = str(self.registered_model_name)
        started = time.monotonic()
        run_id, experiment_id, version = self.hook.log_and_register(
            name,
            experiment=str(self.experiment_name or name),
            run_name=spec.job_name,
            params=spec.params,
            metrics=metrics,
            tags=tags,
            model_dir=model_dir,
            files=(os.path.join(output, "metrics.json"),),
        )
        self.log.info(
            "Registered %s v%s from run %s in %.1fs; metrics %s",
            name,
            version,
            run_id,
            time.monotonic() - started,
            json.dumps(metrics, sort_keys=True),
        )
        return self._result(
            context,
            name,
            version,
            run_id,
            experiment_id,
            job=(handle.backend, handle.job_id, handle.console_url),
            metrics=metrics,
        )

    def _result(
        self,
        context: Context,
        name: str,
        version: str,
        run_id: str,
        experiment_id: str,
        *,
        job: tuple[str | None, str | None, str | None],
        metrics: dict[str, float],
    ) -> dict[str, Any]:
        """The task's XCom for a registered version (``job``: backend, job id, console URL), with
        the *MLflow run* and *Model version* links persisted."""
        MlflowRunLink.persist(context, self.hook.run_url(experiment_id, run_id))
        MlflowModelVersionLink.persist(context, self.hook.model_version_url(name, version))
        backend, job_id, console_url = job
        return {
            "backend": backend,
            "job_id": job_id,
            "console_url": console_url,
            "run_id": run_id,
            "model_uri": f"models:/{name}/{version}",
            "model_name": name,
            "model_version": str(version),
            "metrics": metrics,
        }


def _check_dag_side(config: Any, configs: Any, allowed: Any) -> None:
    """The DAG author's backend arguments, checked when the DAG is parsed (no I/O)."""
    if config is not None and configs is not None:
        raise ValueError("give backend_config or backend_configs, not both")
    if configs is not None and (
        not isinstance(configs, Mapping) or not set(configs) <= set(BACKENDS) or is_templated(configs)
    ):
        raise ValueError(f"backend_configs must map backend names ({sorted(BACKENDS)}) to their settings")
    for name, value in (("backend_config", config), ("backend_configs", configs)):
        if mentions_run_input(value):
            raise ValueError(
                f"{name} must not be templated from the run's form (params or dag_run.conf): it holds "
                "what only the DAG author may choose (interpreter, environment, image, role, "
                "connections, outputs). Pass the form's backend settings as backend_overrides, "
                "which allows sizing keys only."
            )
    if allowed is not None and (isinstance(allowed, str) or not all(isinstance(k, str) for k in allowed)):
        raise ValueError(f"allowed_overrides must be a list of backend setting names, got {allowed!r}")
