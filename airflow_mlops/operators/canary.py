"""Canary operators that read and score: the shared base of every canary operator (model, aliases,
target, hook), the analysis of a running canary, and batch scoring with whatever the registry says
is serving. The moves (start, step, promote, abort) are in :mod:`airflow_mlops.operators.deploy`.

The deployment target, its endpoint, variants and identities are constructor arguments that are
**not** templated: they come from the DAG file, never from the trigger form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.core import tags
from airflow_mlops.deploy.base import TARGETS, DeploymentTarget, get_target
from airflow_mlops.exceptions import DataInputError
from airflow_mlops.hooks.mlflow import MlflowHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class _CanaryOperator(BaseOperator):
    """What every canary operator shares: the model, its aliases, the target and the hook.

    :param model_name: the registered model.
    :param target: where the model serves: ``batch`` (on the worker), ``sagemaker``,
        ``vertex_ai`` or ``azure_ml`` (docs/deploy/). Not templated: from the DAG file.
    :param target_config: the target's settings (endpoint, variants, roles; docs/deploy/<target>.md).
        Not templated: from the DAG file.
    :param canary_alias: the alias of the version in canary.
    :param champion_alias: the alias of the version serving the rest (the control).
    :param mlflow_conn_id: the MLflow connection.
    """

    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        model_name: str,
        target: str = "batch",
        target_config: dict[str, Any] | None = None,
        canary_alias: str = tags.CANARY_ALIAS,
        champion_alias: str = "champion",
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not model_name:
            raise ValueError("model_name is required")
        if target not in TARGETS:
            raise ValueError(f"unknown deployment target {target!r}; choose one of {sorted(TARGETS)}")
        if target_config is not None and not isinstance(target_config, dict):
            raise ValueError("target_config must be a dict (from the DAG file; it is not templated)")
        self.model_name = model_name
        self.target = target
        self.target_config = dict(target_config or {})
        self.canary_alias = canary_alias
        self.champion_alias = champion_alias
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def deployment(self) -> DeploymentTarget:
        try:
            return get_target(
                self.target, self.target_config, self.log, model_name=self.model_name, mlflow=self.hook
            )
        except ValueError as err:
            raise DataInputError(str(err)) from err

    def aliases(self) -> dict[str, str]:
        return {"canary_alias": self.canary_alias, "champion_alias": self.champion_alias}

    def state(self) -> Any:
        """The rollout as the registry records it; the task is skipped, saying why, when the model
        is not registered yet (a fresh install: no training run has registered a version)."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        state = self.hook.rollout_state(self.model_name, missing_ok=True, **self.aliases())
        if state is None:
            raise AirflowSkipException(
                f"{self.model_name} is not registered in {self.hook.registry_uri} yet: nothing to roll "
                "out or score until a training run registers its first version (check the model "
                "name, MLOPS_MODEL_NAME, if one has)"
            )
        return state


class CanaryAnalysisOperator(_CanaryOperator):
    """
    Judge the running canary on its labelled outcomes (and the target's alarms) with
    :func:`airflow_mlops.core.canary.analyse`; log the verdict with its reasons, store the record
    on the candidate version (``mlops.canary.analysis``) and return it.

    With no canary running it returns ``{"active": false, "in_sync": ...}``: whether the target
    serves ``@champion`` alone (a deploy DAG syncs it when it does not).

    :param outcomes: where the labelled outcomes are: for ``batch`` a URI template with
        ``{batch}`` (the labels of each scored batch, joined by id); for an endpoint a table of
        its labelled predictions (see docs/deploy/). Templated.
    :param label_column: the label column of the outcomes.
    :return: the analysis record (``verdict``: ``continue``/``promote``/``rollback``/``wait``,
        ``reasons``, per-arm counts and values, the difference and its interval, ``rollout``,
        ``share``, ``plan``, ``alarms``) merged with the rollout state.
    """

    template_fields: Sequence[str] = ("outcomes",)

    def __init__(self, *, outcomes: str, label_column: str = "label", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not outcomes:
            raise ValueError("outcomes is required (where the labelled outcomes of the canary are)")
        self.outcomes = outcomes
        self.label_column = label_column

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.canary import analyse

        state = self.state()
        target = self.deployment()
        summary = state.summary()
        served = target.serving()
        summary["serving"] = None if served is None else served.describe()
        summary["in_sync"] = served is None or served.weights() == state.traffic().weights()
        if not state.active:
            self.log.info(
                "No canary of %s is running; the target serves %s (%s)",
                self.model_name,
                summary["serving"] or state.traffic().describe(),
                "in sync with @champion" if summary["in_sync"] else "NOT in sync with @champion",
            )
            return {**summary, "verdict": None, "reasons": ["no canary is running"]}
        plan = state.plan
        stats = target.outcomes(state, str(self.outcomes), target=self.label_column, metric=plan.metric)
        record = analyse(
            stats["control"],
            stats["canary"],
            plan,
            share=state.share,
            step_at=state.last.at,
            alarms=target.alarms(),
            versions=(state.control, state.candidate),
        )
        self.log.info(
            "Canary v%s of %s at %g %% vs control v%s: %s",
            state.candidate,
            self.model_name,
            state.share,
            state.control,
            record["verdict"].upper(),
        )
        for reason in record["reasons"]:
            self.log.info("  - %s", reason)
        self.hook.set_version_tags(
            self.model_name, state.candidate, {tags.CANARY_ANALYSIS: json.dumps(record, default=str)[:99_000]}
        )
        return {**summary, **record}


class BatchScoreOperator(_CanaryOperator):
    """
    Score a table on the worker with the versions the registry says are serving (``@champion``,
    and ``@canary`` on its share of entities by id hash) and write the predictions with each row's
    version and arm to ``<target_config['predictions']>/<batch>.parquet``.

    :param data: the table to score (a file or folder URI). Templated.
    :param batch: the batch's name, also the predictions file's (default: the run's date). Templated.
    :return: ``{predictions, batch, rows, rollout, traffic, arms, seconds}``
    """

    template_fields: Sequence[str] = ("data", "batch")

    def __init__(self, *, data: str, batch: str = "{{ ds }}", **kwargs: Any) -> None:
        kwargs.setdefault("target", "batch")
        super().__init__(**kwargs)
        if self.target != "batch":
            raise ValueError("BatchScoreOperator scores with the batch target only")
        if not data:
            raise ValueError("data is required")
        self.data = data
        self.batch = batch

    def execute(self, context: Context) -> dict[str, Any]:
        return self.deployment().score(str(self.data), str(self.batch), self.state())
