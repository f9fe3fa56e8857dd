"""Champion vs challenger: score both on the same fresh data and decide whether to promote."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.core.evaluation import BOOTSTRAP_CHOICES, ON_REJECT_CHOICES, PROMOTE, check_thresholds
from airflow_mlops.core.metrics import check_metric, family, finite_number, task_of
from airflow_mlops.exceptions import DataInputError, ModelRejected, RegistryError
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.links.mlflow import MlflowModelVersionLink
from airflow_mlops.scoring import labelled_data, score_version
from airflow_mlops.templating import is_templated, json_object_arg

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


class EvaluateModelOperator(BaseOperator):
    """
    Score a candidate model version and the current champion on the same data, and decide.

    Both models are loaded from the MLflow registry (scikit-learn flavour when present, else
    pyfunc) and scored on ``eval_data`` with ``metric`` and the metrics named in ``thresholds``.
    The rule (:func:`airflow_mlops.core.evaluation.decide`): the candidate must meet every absolute
    threshold and beat the champion on ``metric`` by more than ``min_improvement``; with no
    champion, ``bootstrap`` decides. Every reason is logged in words.

    The decision record ``{decision, reasons, candidate: {version, metrics}, champion: {version,
    metrics} | None}`` is returned (XCom) and written on the candidate version as tags
    (``mlops.eval.*``), with all metrics of the task family as the baseline the performance sensor
    reads. A following ``PromoteModelOperator`` takes ``record["champion"]["version"]`` (or
    ``"none"``) as ``expected_current``, so the alias only moves if nobody moved it meanwhile.

    On reject the record is pushed first, then ``on_reject="skip"`` skips this task (and with it a
    downstream promotion), ``"fail"`` raises :class:`~airflow_mlops.exceptions.ModelRejected`.
    With no champion and ``bootstrap="fail"`` the task fails whatever ``on_reject`` says: a
    missing champion is a set-up problem, not a bad candidate
    (:func:`airflow_mlops.core.evaluation.reject_outcome`).

    :param model_name: registered model name.
    :param candidate_version: version to evaluate (e.g. ``{{ ti.xcom_pull('train')['model_version'] }}``).
        Templated.
    :param eval_data: URI of labelled evaluation data (parquet/CSV file or folder). Templated.
    :param target: label column of ``eval_data``. Templated.
    :param metric: deciding metric: accuracy, f1, precision, recall, roc_auc (classification);
        rmse, mae, r2 (regression).
    :param greater_is_better: direction of ``metric``; None (default) uses the metric's natural
        direction (False for rmse and mae).
    :param min_improvement: margin (metric units) by which the candidate must beat the champion;
        a tie keeps the champion; a negative value tolerates a small regression.
    :param thresholds: absolute bounds on the candidate, ``{"accuracy": 0.8}``: a floor for scores,
        a ceiling for errors (rmse, mae). A dict, or a JSON object as a string (templated or not).
    :param champion_alias: alias of the current champion.
    :param bootstrap: ``"promote"`` or ``"fail"`` when no version holds ``champion_alias``.
    :param on_reject: ``"skip"`` or ``"fail"``.
    :param eval_conn_id: Airflow connection for reading ``eval_data`` from object storage.
    :param mlflow_conn_id: MLflow connection.
    :return: the decision record.
    """

    template_fields: Sequence[str] = ("model_name", "candidate_version", "eval_data", "target", "thresholds")
    template_fields_renderers = {"thresholds": "json"}
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#fef9e7"

    def __init__(
        self,
        *,
        model_name: str,
        candidate_version: str | int,
        eval_data: str,
        target: str,
        metric: str,
        greater_is_better: bool | None = None,
        min_improvement: float = 0.0,
        thresholds: dict[str, float] | None = None,
        champion_alias: str = "champion",
        bootstrap: str = "promote",
        on_reject: str = "skip",
        eval_conn_id: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("model_name", model_name), ("eval_data", eval_data), ("target", target)):
            if not value:
                raise ValueError(f"{name} is required")
        if candidate_version is None or str(candidate_version).strip() == "":
            raise ValueError("candidate_version is required")
        check_metric(metric)
        if bootstrap not in BOOTSTRAP_CHOICES:
            raise ValueError(f"bootstrap must be one of {BOOTSTRAP_CHOICES}, got {bootstrap!r}")
        if on_reject not in ON_REJECT_CHOICES:
            raise ValueError(f"on_reject must be one of {ON_REJECT_CHOICES}, got {on_reject!r}")
        min_improvement = finite_number(min_improvement, "min_improvement")
        if thresholds is not None and not is_templated(thresholds):
            try:
                thresholds = json_object_arg("thresholds", thresholds)
            except DataInputError as err:  # not a JSON object: a bad argument, at parse time
                raise ValueError(str(err)) from None
            if any(is_templated(bound) for bound in thresholds.values()):
                for name in thresholds:  # the bounds are checked once rendered
                    check_metric(name)
            else:
                thresholds = check_thresholds(thresholds)
            mixed = sorted(m for m in thresholds if task_of(m) != task_of(metric))
            if mixed:
                raise ValueError(f"thresholds {mixed} are not {task_of(metric)} metrics like {metric!r}")
        self.model_name = model_name
        self.candidate_version = candidate_version
        self.eval_data = eval_data
        self.target = target
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.min_improvement = min_improvement
        self.thresholds = thresholds
        self.champion_alias = champion_alias
        self.bootstrap = bootstrap
        self.on_reject = on_reject
        self.eval_conn_id = eval_conn_id
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def _thresholds(self) -> dict[str, float]:
        value = json_object_arg("thresholds", self.thresholds)
        try:
            return check_thresholds(value)
        except ValueError as err:
            raise DataInputError(str(err)) from err

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from airflow_mlops.core import tags
        from airflow_mlops.core.evaluation import decide, reject_outcome

        name = str(self.model_name)
        candidate = str(self.candidate_version).strip()
        if not candidate or candidate.lower() == "none":
            raise RegistryError(
                f"no candidate version of {name} to evaluate (got {self.candidate_version!r})"
            )
        thresholds = self._thresholds()
        wanted = list(dict.fromkeys([self.metric, *thresholds, *family(self.metric)]))
        required = [self.metric, *thresholds]

        X, y = labelled_data(
            str(self.eval_data), target=str(self.target), setting="eval_data", conn_id=self.eval_conn_id
        )
        self.log.info(
            "Evaluating %s v%s on %s (%d rows) by %s", name, candidate, self.eval_data, len(y), self.metric
        )

        self.hook.get_model_version(name, version=candidate)
        champion = self.hook.get_model_version(name, alias=self.champion_alias, missing_ok=True)
        champion_version = str(champion.version) if champion is not None else None
        if champion_version is None:
            self.log.info("No version of %s holds @%s", name, self.champion_alias)
        else:
            self.log.info("Champion: %s v%s holds @%s", name, champion_version, self.champion_alias)

        candidate_metrics = self._score(name, candidate, X, y, wanted, required)
        champion_metrics: dict[str, float] | None = None
        champion_error = None
        if champion_version is not None:
            try:
                champion_metrics = self._score(name, champion_version, X, y, wanted, required)
            except DataInputError as err:
                # the data moved on (a new column schema ...): the champion sets no benchmark
                champion_error = str(err)
                champion_metrics = {}
                self.log.warning("Champion v%s cannot be scored on this data: %s", champion_version, err)

        record = decide(
            metric=self.metric,
            candidate_version=candidate,
            candidate_metrics=candidate_metrics,
            champion_version=champion_version,
            champion_metrics=champion_metrics,
            greater_is_better=self.greater_is_better,
            min_improvement=self.min_improvement,
            thresholds=thresholds,
            bootstrap=self.bootstrap,
            alias=self.champion_alias,
            champion_error=champion_error,
        )
        self._lineage = (record, self.hook.registry_uri)  # for get_openlineage_facets_on_complete
        for reason in record["reasons"]:
            self.log.info("Evaluation: %s", reason)
        self.log.info("Decision for %s v%s: %s", name, candidate, record["decision"].upper())

        self.hook.set_version_tags(
            name,
            candidate,
            {
                tags.EVAL_DECISION: record["decision"],
                tags.EVAL_RECORD: json.dumps(record, sort_keys=True),
                tags.EVAL_METRIC: self.metric,
                tags.EVAL_METRICS: json.dumps(record["candidate"]["metrics"], sort_keys=True),
                tags.EVAL_DATA_URI: str(self.eval_data),
            },
        )
        MlflowModelVersionLink.persist(context, self.hook.model_version_url(name, candidate))

        if record["decision"] == PROMOTE:
            return record
        context["ti"].xcom_push(key="return_value", value=record)
        message = f"{name} v{candidate} rejected: {'; '.join(record['reasons'])}"
        if reject_outcome(record, bootstrap=self.bootstrap, on_reject=self.on_reject) == "fail":
            self.log.info(
                "Failing: on_reject=%r, bootstrap=%r, champion %s",
                self.on_reject,
                self.bootstrap,
                f"v{champion_version}" if champion_version else "none",
            )
            raise ModelRejected(message, record=record)
        self.log.info("on_reject='skip': skipping this task and the promotion after it")
        raise AirflowSkipException(message)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        from airflow_mlops.openlineage import evaluation_lineage

        return evaluation_lineage(self)

    def _score(
        self, name: str, version: str, X: Any, y: Any, wanted: list[str], required: list[str]
    ) -> dict[str, float]:
        out = score_version(
            self.hook,
            name,
            version,
            X,
            y,
            wanted,
            required=required,
            what=f"eval_data {self.eval_data}",
            log=self.log,
        )
        self.log.info("%s v%s metrics: %s", name, version, json.dumps(out, sort_keys=True))
        return out
