"""The MLflow runs a task logs: a report run, and a trained model's run with its registered version.

:class:`RunLogging` is part of :class:`~airflow_mlops.hooks.mlflow.MlflowHook` (kept apart to keep
the hook readable); it uses the hook's :meth:`~airflow_mlops.hooks.mlflow.MlflowHook.session` and
:meth:`~airflow_mlops.hooks.mlflow.MlflowHook.errors`, so its errors are mapped the same way.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlflow.entities.model_registry import ModelVersion

_PARAM_VALUE_MAX = 6000  # MLflow's limit on a param value
_METRIC_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class ReportRun:
    """Where :meth:`MlflowHook.log_report_run` put a report."""

    run_id: str
    experiment_id: str
    artifact_uri: str
    url: str | None


@dataclass(frozen=True)
class Registration:
    """A version registered by a task instance (:meth:`MlflowHook.earlier_registration`)."""

    run_id: str
    experiment_id: str
    version: str
    tags: dict[str, str]


class RunLogging:
    """Run logging and idempotent registration, as methods of ``MlflowHook``."""

    def log_report_run(
        self,
        *,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str],
        metrics: Mapping[str, float],
        artifacts: Mapping[str, str],
        artifact_path: str,
        failed: bool = False,
    ) -> ReportRun:
        """One MLflow run holding a report: tags, metrics and text files, then terminated.

        :param artifacts: ``{file name: text}`` written under ``artifact_path`` in the run.
        :param failed: end the run as FAILED (e.g. a gate that failed) instead of FINISHED; a run
            whose logging broke half-way also ends FAILED.
        """
        from mlflow.entities import Metric

        with (
            self.errors(f"logging the {artifact_path} report to experiment {experiment!r}"),
            self.session() as client,
        ):
            experiment_id = self.get_or_create_experiment(experiment)
            run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
            run_id = run.info.run_id
            try:
                now = int(time.time() * 1000)
                batch = [Metric(metric_key(k), float(v), now, 0) for k, v in metrics.items() if v is not None]
                if batch:
                    client.log_batch(run_id, metrics=batch)
                with tempfile.TemporaryDirectory(prefix="mlops-report-") as tmp:
                    for file_name, text in artifacts.items():
                        with open(os.path.join(tmp, file_name), "w", encoding="utf-8") as fh:
                            fh.write(text)
                    client.log_artifacts(run_id, tmp, artifact_path=artifact_path)
                client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
            except Exception:
                client.set_terminated(run_id, "FAILED")
                raise
        return ReportRun(
            run_id,
            experiment_id,
            f"{run.info.artifact_uri}/{artifact_path}",
            self.run_url(experiment_id, run_id),
        )

    def log_and_register(
        self,
        name: str,
        *,
        experiment: str,
        run_name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        model_dir: str,
        files: tuple[str, ...] = (),
    ) -> tuple[str, str, str]:
        """One run holding params, metrics and a model directory byte for byte; then a new
        registered version of ``name`` from it, with ``tags`` on both.

        Idempotent per task instance: when ``tags`` name the Airflow task instance
        (``mlops.airflow.dag_id``/``run_id``/``task_id``, as ``TrainModelOperator`` writes them) and
        a version of ``name`` with those tags, logged under ``run_name``, exists, that version is
        returned and nothing is logged or registered (a retried or cleared ``train``).

        :param model_dir: an MLflow model directory (with ``MLmodel``), logged as ``model/``.
        :param files: more files logged at the run's root (e.g. ``metrics.json``).
        :return: ``(run_id, experiment_id, version)``
        """
        import mlflow

        from airflow_mlops.core import tags as tag_names

        origin = {
            "dag_id": tags.get(tag_names.AIRFLOW_DAG_ID),
            "run_id": tags.get(tag_names.AIRFLOW_RUN_ID),
            "task_id": tags.get(tag_names.AIRFLOW_TASK_ID),
        }
        with self.errors(f"logging and registering a version of {name}"), self.session():
            earlier = self.earlier_registration(name, origin, run_name=run_name)
            if earlier is not None:
                self.log.warning(
                    "%s v%s was already registered by this task instance (%s) from run %s: "
                    "returning it instead of registering a second version",
                    name,
                    earlier.version,
                    "/".join(map(str, origin.values())),
                    earlier.run_id,
                )
                return earlier.run_id, earlier.experiment_id, earlier.version
            experiment_id = self.get_or_create_experiment(experiment)
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags)) as run:
                if params:
                    mlflow.log_params({k: param_value(v) for k, v in params.items()})
                if metrics:
                    mlflow.log_metrics(dict(metrics))
                mlflow.log_artifacts(model_dir, artifact_path="model")
                for path in files:
                    mlflow.log_artifact(path)
            version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name, tags=dict(tags))
        return run.info.run_id, experiment_id, str(version.version)

    def earlier_registration(
        self, name: str, origin: Mapping[str, Any], *, run_name: str | None = None
    ) -> Registration | None:
        """The version of ``name`` that the task instance ``origin`` registered in an earlier try
        (see :meth:`find_version`), with its run's experiment and the version's tags; or None.

        :raises MlopsError: MLflow failed or is unreachable.
        """
        found = self.find_version(name, origin, run_name=run_name)
        if found is None:
            return None
        with self.errors(f"reading the run of {name} v{found.version}"), self.session() as client:
            experiment_id = client.get_run(found.run_id).info.experiment_id
        return Registration(found.run_id, str(experiment_id), str(found.version), dict(found.tags))

    def find_version(
        self, name: str, origin: Mapping[str, Any], *, run_name: str | None = None
    ) -> ModelVersion | None:
        """The version of ``name`` registered by the task instance ``origin`` (``dag_id``,
        ``run_id``, ``task_id``: the ``mlops.airflow.*`` lineage tags), or None.

        :param run_name: also require the version's run to carry this name (the training job
            name, which tells the map indexes of a mapped task apart).
        :raises MlopsError: MLflow failed or is unreachable.
        """
        from airflow_mlops.core import tags as tag_names

        wanted = {
            tag_names.AIRFLOW_DAG_ID: str(origin.get("dag_id") or ""),
            tag_names.AIRFLOW_RUN_ID: str(origin.get("run_id") or ""),
            tag_names.AIRFLOW_TASK_ID: str(origin.get("task_id") or ""),
        }
        if not all(wanted.values()):
            return None
        # MLflow's filter grammar cannot escape a quote: narrow by whichever value has none
        run_id = wanted[tag_names.AIRFLOW_RUN_ID]
        if "'" not in run_id:
            query = f"tags.`{tag_names.AIRFLOW_RUN_ID}` = '{run_id}'"
        elif "'" not in name:
            query = f"name = '{name}'"
        else:
            self.log.warning(
                "Cannot search the registry for %r registered by run %r (quotes in both)", name, run_id
            )
            return None
        with (
            self.errors(f"looking for the version of {name} registered by {run_id}"),
            self.session() as client,
        ):
            found = [
                mv
                for mv in client.search_model_versions(filter_string=query)
                if mv.name == name and all(mv.tags.get(k) == v for k, v in wanted.items())
            ]
            if run_name is not None:
                found = [
                    mv for mv in found if mv.run_id and client.get_run(mv.run_id).info.run_name == run_name
                ]
        return min(found, key=lambda mv: int(mv.version)) if found else None


def metric_key(name: str) -> str:
    """``name`` with the characters MLflow refuses in a metric key replaced (max 200 characters)."""
    return _METRIC_KEY.sub("_", str(name))[:200]


def param_value(value: Any) -> str:
    """A param value as MLflow stores it: strings as they are, anything else as JSON, capped."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:_PARAM_VALUE_MAX]
