"""Model performance sensor: scores the champion on recent labelled data and notices decay."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_mlops.assets import (
    PERFORMANCE_ASSET_ALIAS,
    emit,
    model_name_of,
    outlet_for,
    performance_asset_uri,
    task_origin,
)
from airflow_mlops.core import tags
from airflow_mlops.core.engines.uri import parse_data_uri
from airflow_mlops.core.metrics import check_bound, check_metric
from airflow_mlops.exceptions import DataInputError, RegistryError
from airflow_mlops.hooks.mlflow import MODELS_SCHEME, MlflowHook, parse_model_uri
from airflow_mlops.io import engine_session, open_data, parse_data
from airflow_mlops.links.mlflow import MlflowModelVersionLink
from airflow_mlops.scoring import labelled_data, score_version, score_version_in_batches
from airflow_mlops.sensors.base import StrictSensor
from airflow_mlops.templating import is_templated

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelPerformanceSensor(StrictSensor):
    """
    Wait until a registered model performs worse on recent labelled data than it should.

    The model (default: the version holding ``@champion``) is loaded from the MLflow registry and
    scored on ``data`` with ``metric`` (:func:`airflow_mlops.core.metrics.score`). The baseline is
    the value recorded when the version was evaluated (tag ``mlops.eval.metrics``), else the
    training metrics (tag ``mlops.train.metrics``). The model has degraded when the metric is
    worse than ``min_value``, or worse than the baseline by more than ``max_drop`` (relative).
    Without a baseline only ``min_value`` applies (and the log says so); with neither the task
    fails, so a monitor cannot silently report "fine".

    On degradation the sensor succeeds, returns ``{metric, value, baseline, degraded, ...}`` and
    emits an Asset event ``x-mlops://performance/<model_name>`` (see :func:`performance_asset_uri`)
    carrying it. Otherwise it pokes again (``mode="reschedule"`` by default); with
    ``soft_fail=True`` a stable model ends *skipped*. Bad input (unreadable data, a missing target
    column, a model that cannot score the data, an unknown alias) fails even with ``soft_fail``.

    :param model_uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>`` or
        ``models:/<name>`` (= ``@champion``). Templated.
    :param data: recent labelled data, a path or URI (parquet or CSV), or a table or query through
        a connection (``sql://<conn_id>/<table>``, ``sql://<conn_id>?query=...``,
        ``spark://<conn_id>/<table>``): a table is streamed through the model in batches of
        ``batch_size`` rows, never read whole. Templated.
    :param target: the label column of ``data``. Templated.
    :param metric: accuracy, f1, precision, recall, roc_auc (classification); rmse, mae, r2
        (regression).
    :param min_value: the worst acceptable value: a floor for scores, a ceiling for errors
        (rmse, mae).
    :param max_drop: the largest acceptable worsening relative to the baseline (0.05 = 5 %).
    :param greater_is_better: the metric's direction; None (default) uses the metric's natural
        direction (False for rmse and mae).
    :param mlflow_conn_id: MLflow connection.
    :param data_conn_id: Airflow connection for object-storage URIs (credentials), if needed.
    :param batch_size: rows per batch when ``data`` is a table.
    :return: ``{metric, value, baseline, degraded, baseline_source, reasons, model_name,
        model_version, rows, data, asset_uri}``
    """

    template_fields: Sequence[str] = ("model_uri", "data", "target")
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        model_uri: str,
        data: str,
        target: str,
        metric: str,
        min_value: float | None = None,
        max_drop: float | None = None,
        greater_is_better: bool | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        data_conn_id: str | None = None,
        batch_size: int = 100_000,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        if not isinstance(model_uri, str) or not model_uri.startswith(MODELS_SCHEME):
            raise ValueError(f"model_uri must look like models:/<name>@<alias>, got {model_uri!r}")
        if not is_templated(model_uri):
            parse_model_uri(model_uri)
        for name, value in (("data", data), ("target", target)):
            if not value or not isinstance(value, str):
                raise ValueError(f"{name} is required")
        if not is_templated(data):
            parse_data_uri(data, "data")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        check_metric(metric)
        if min_value is None and max_drop is None:
            raise ValueError("give min_value, max_drop or both: otherwise nothing can count as degraded")
        for name, value in (("min_value", min_value), ("max_drop", max_drop)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if min_value is not None:
            min_value = check_bound(metric, min_value, "min_value")
        if max_drop is not None and not 0 <= max_drop < math.inf:  # NaN fails this too
            raise ValueError(
                f"max_drop is a relative worsening and cannot be negative, NaN or infinite, got {max_drop!r}"
            )
        self._asset_uri = performance_asset_uri(model_name_of(model_uri))
        self._outlet = outlet_for(self._asset_uri, PERFORMANCE_ASSET_ALIAS)
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), self._outlet]
        super().__init__(**kwargs)
        self.model_uri = model_uri
        self.data = data
        self.target = target
        self.metric = metric
        self.min_value = min_value
        self.max_drop = max_drop
        self.greater_is_better = greater_is_better
        self.mlflow_conn_id = mlflow_conn_id
        self.data_conn_id = data_conn_id
        self.batch_size = batch_size

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_mlops.core.metrics import greater_is_better
        from airflow_mlops.core.performance import PerformanceConfigError, performance_verdict

        try:
            name, alias, version = parse_model_uri(str(self.model_uri))
        except ValueError as err:
            raise DataInputError(f"model_uri: {err}") from None
        data = parse_data(str(self.data), what="data")
        if not alias and not version:
            alias = "champion"
        model_version = self._model_version(name, alias, version)
        version = str(model_version.version)
        label = f"{name}@{alias} (v{version})" if alias else f"{name} v{version}"
        greater = greater_is_better(self.metric) if self.greater_is_better is None else self.greater_is_better

        if data.is_table:
            # scoring needs the rows and the model: the table is streamed through it in batches
            with engine_session(self.data_conn_id) as session:
                table = open_data(session, data, data.kind, what="data")
                self.log.info("Scoring %s on %s in batches of %d rows", label, self.data, self.batch_size)
                scores, rows = score_version_in_batches(
                    self.hook, name, version, table.batches(self.batch_size), target=str(self.target),
                    metrics=[self.metric], what=f"data {self.data}", model_label=label,
                )  # fmt: skip
        else:
            X, y = labelled_data(
                str(self.data), target=str(self.target), setting="data", conn_id=self.data_conn_id
            )
            scores = score_version(
                self.hook,
                name,
                version,
                X,
                y,
                [self.metric],
                required=[self.metric],
                what=f"data {self.data}",
                model_label=label,
                log=self.log,
            )
            rows = len(y)
        value = scores[self.metric]
        self.log.info("%s scores %s = %.6g on %s (%d rows)", label, self.metric, value, self.data, rows)

        baseline, source = self._baseline(model_version.tags or {})
        if baseline is None:
            self.log.warning(
                "%s has no recorded %s (tags %s, %s): only min_value applies%s",
                label,
                self.metric,
                tags.EVAL_METRICS,
                tags.METRICS,
                "" if self.max_drop is None else "; max_drop cannot be checked",
            )
        else:
            self.log.info("Baseline %s = %.6g, recorded at %s", self.metric, baseline, source)
        try:
            verdict = performance_verdict(
                self.metric,
                value,
                baseline,
                min_value=self.min_value,
                max_drop=self.max_drop,
                greater_is_better=greater,
            )
        except PerformanceConfigError as err:
            raise DataInputError(f"{label}: {err}") from err
        for reason in verdict.reasons:
            self.log.info("Performance: %s", reason)
        self.log.info("%s: performance %s", label, "DEGRADED" if verdict.degraded else "holds")

        summary = {
            "metric": self.metric,
            "value": value,
            "baseline": baseline,
            "degraded": verdict.degraded,
            "baseline_source": source,
            "relative_change": verdict.relative_change,
            "greater_is_better": greater,
            "min_value": self.min_value,
            "max_drop": self.max_drop,
            "reasons": verdict.reasons,
            "model_name": name,
            "model_version": version,
            "alias": alias,
            "data": str(self.data),
            "rows": rows,
            "asset_uri": performance_asset_uri(name),
        }
        MlflowModelVersionLink.persist(context, self.hook.model_version_url(name, version))
        context["ti"].xcom_push(key=tags.XCOM_PERFORMANCE_SUMMARY, value=summary)
        if verdict.degraded:
            emit(context, self._outlet, summary["asset_uri"], {**summary, **task_origin(context)})
            self.log.info("Emitting the performance event on %s", summary["asset_uri"])
        return PokeReturnValue(is_done=verdict.degraded, xcom_value=summary)

    def _baseline(self, version_tags: dict[str, str]) -> tuple[float | None, str | None]:
        """The metric recorded at evaluation, else at training, with where it was found."""
        for key, source in ((tags.EVAL_METRICS, "evaluation"), (tags.METRICS, "training")):
            raw = version_tags.get(key)
            if not raw:
                continue
            try:
                recorded = json.loads(raw)
            except ValueError:
                self.log.warning("Tag %s is not JSON (%r): ignored", key, raw[:200])
                continue
            value = recorded.get(self.metric) if isinstance(recorded, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value), f"{source} (tag {key})"
        return None, None

    def _model_version(self, name: str, alias: str | None, version: str | None) -> Any:
        try:
            found = self.hook.get_model_version(name, alias=alias, version=version, missing_ok=True)
        except RegistryError as err:
            raise DataInputError(f"models:/{name}: {err}") from err
        if found is None:
            target = f"@{alias}" if alias else f"version {version}"
            raise DataInputError(
                f"models:/{name}: no version of {name} holds {target} in the registry at {self.hook.registry_uri}"
            )
        return found
