"""Where a model serves: the small interface every deployment target implements.

A target turns a :class:`~airflow_mlops.core.canary.Traffic` (the control version, the canary
version, the canary's share) into what serves predictions: the batch scoring on the worker
(``batch``), a SageMaker endpoint's production variants (``sagemaker``), a Vertex AI endpoint's
traffic split (``vertex_ai``), an Azure ML online endpoint's traffic (``azure_ml``).

The canary operators call, in order:

- :meth:`DeploymentTarget.prepare` before a rollout moves: the slow part (models created,
  deployed on the endpoint with no traffic yet), idempotent, outside the registry lock;
- :meth:`DeploymentTarget.ready` (and :meth:`DeploymentTarget.trigger` to wait in the
  triggerer) until the endpoint can take the traffic;
- :meth:`DeploymentTarget.apply` inside the registry move: one quick call that sets the full
  traffic state (both shares), so calling it again is harmless;
- :meth:`DeploymentTarget.alarms` and :meth:`DeploymentTarget.outcomes` for the analysis.

Targets are looked up by name (:func:`get_target`) and import their cloud SDKs lazily; a missing
extra raises :class:`~airflow_mlops.exceptions.MissingExtraError` naming it.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlops.backends.base import check_config_keys
from airflow_mlops.core.canary import ARMS, ArmStats, Traffic, arm_stats, outcome_values
from airflow_mlops.exceptions import DataInputError, require_extra

if TYPE_CHECKING:
    import logging

    from airflow.triggers.base import BaseTrigger

    from airflow_mlops.core.registry.rollout import RolloutState
    from airflow_mlops.hooks.mlflow import MlflowHook

TARGETS: dict[str, str] = {
    "batch": "airflow_mlops.deploy.batch.BatchTarget",
    "sagemaker": "airflow_mlops.deploy.sagemaker.SageMakerTarget",
    "vertex_ai": "airflow_mlops.deploy.vertex_ai.VertexAITarget",
    "azure_ml": "airflow_mlops.deploy.azure_ml.AzureMLTarget",
}

# columns of an endpoint's labelled outcomes table (see EndpointTarget.outcomes)
ENDPOINT_OUTCOME_KEYS = frozenset({"outcomes_arm_column", "outcomes_prediction_column"})


class DeploymentTarget(ABC):
    """Serves the versions of one registered model.

    :param config: ``target_config`` from the DAG file (never from the trigger form).
    :param log: the task's logger.
    :param model_name: the registered model whose versions are served.
    :param mlflow: the hook that downloads and loads versions (None: a check that needs none,
        e.g. in the triggerer).
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    extra: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    config_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        config: dict[str, Any] | None,
        log: logging.Logger,
        *,
        model_name: str,
        mlflow: MlflowHook | None = None,
    ) -> None:
        self.config = dict(config or {})
        self.log = log
        self.model_name = model_name
        self.mlflow = mlflow
        title = self.title or self.name
        for module in self.requires:
            require_extra(module, f"The {title} deployment target", self.extra or "all")
        check_config_keys(self.config, self.config_keys, f"{title} target", "target_config")

    # ------------------------------------------------------------------ serving

    def prepare(self, traffic: Traffic) -> None:
        """Make every version of ``traffic`` servable without changing what serves (idempotent).
        Default: nothing to prepare."""
        return None

    def ready(self, traffic: Traffic) -> tuple[bool, str]:
        """``(True, why)`` when the target can take ``traffic`` now (prepared, not updating).

        :raises MlopsError: the target failed (an endpoint update that failed for good).
        """
        return True, f"the {self.title or self.name} target is ready"

    @abstractmethod
    def apply(self, traffic: Traffic) -> None:
        """Set the traffic to exactly ``traffic``: one quick, idempotent call."""

    def serving(self) -> Traffic | None:
        """What the target serves now, read from it; None when it keeps no state of its own (the
        registry is its traffic)."""
        return None

    def trigger(self, traffic: Traffic, poll_interval: float, timeout: float | None) -> BaseTrigger | None:
        """A trigger that fires when :meth:`ready` holds (None: nothing to wait for)."""
        from airflow_mlops.triggers.deploy import DeploymentTargetTrigger

        return DeploymentTargetTrigger(
            target=self.name,
            config=self.config,
            model_name=self.model_name,
            traffic=traffic.to_dict(),
            poll_interval=float(poll_interval),
            timeout=timeout,
        )

    # ------------------------------------------------------------------ analysis

    def alarms(self) -> list[dict[str, Any]]:
        """``[{name, state, reason}]`` of the target's alarms that are firing now."""
        return []

    @abstractmethod
    def outcomes(self, state: RolloutState, source: str, *, target: str, metric: str) -> dict[str, ArmStats]:
        """Per-arm statistics of the labelled outcomes of the running rollout.

        :param source: where the outcomes are (the target's kind of table, see its docs).
        :param target: the label column.
        :param metric: the per-outcome metric (:data:`airflow_mlops.core.canary.METRICS`).
        """

    # ------------------------------------------------------------------ helpers

    def require(self, *keys: str) -> None:
        missing = [k for k in keys if not self.config.get(k)]
        if missing:
            raise ValueError(
                f"target_config: the {self.title or self.name} target needs {', '.join(map(repr, missing))}"
            )

    def need_mlflow(self) -> MlflowHook:
        if self.mlflow is None:
            raise RuntimeError(f"the {self.name} target needs an MlflowHook to read model versions")
        return self.mlflow


class EndpointTarget(DeploymentTarget):
    """A cloud endpoint: the variant/deployment names map to versions, and the labelled outcomes
    are a table of the endpoint's captured predictions joined with their labels."""

    def variant_versions(self) -> dict[str, str]:
        """``{variant or deployment name: version}`` of what the endpoint hosts now."""
        return {}

    def outcomes(self, state: RolloutState, source: str, *, target: str, metric: str) -> dict[str, ArmStats]:
        """Read ``source``: one row per labelled prediction, with the column
        ``outcomes_arm_column`` (default ``variant``: the variant, deployment or deployed model
        that answered, or a version number), ``outcomes_prediction_column`` (default
        ``prediction``) and the label column ``target``."""
        from airflow_mlops.io import load_table

        arm_col = self.config.get("outcomes_arm_column", "variant")
        pred_col = self.config.get("outcomes_prediction_column", "prediction")
        df = load_table(source, what="outcomes")
        missing = [c for c in (arm_col, pred_col, target) if c not in df.columns]
        if missing:
            raise DataInputError(f"outcomes {source} lacks columns {missing}; it has {list(df.columns)}")
        names = {**self.variant_versions(), state.control: state.control, state.candidate: state.candidate}
        arm_of_version = {state.control: ARMS[0], state.candidate: ARMS[1]}
        arms = df[arm_col].astype(str).map(lambda v: arm_of_version.get(names.get(v)))
        labelled = df[arms.notna() & df[target].notna()]
        if len(labelled) < len(df):
            self.log.info(
                "outcomes %s: %d of %d rows belong to neither arm or lack a label",
                source,
                len(df) - len(labelled),
                len(df),
            )
        values = outcome_values(metric, labelled[target], labelled[pred_col])
        return arm_stats(arms[labelled.index], values)


def get_target(
    name: str,
    config: dict[str, Any] | None,
    log: logging.Logger,
    *,
    model_name: str,
    mlflow: MlflowHook | None = None,
) -> DeploymentTarget:
    """Instantiate the target called ``name``; unknown names list the valid ones."""
    path = TARGETS.get(name)
    if path is None:
        raise ValueError(f"unknown deployment target {name!r}; choose one of {sorted(TARGETS)}")
    module_name, class_name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, log, model_name=model_name, mlflow=mlflow)


def version_of(name: str, prefix: str) -> str | None:
    """The version in a resource named ``<prefix>-v<version>``, or None."""
    head, sep, tail = str(name).rpartition("-v")
    return tail if sep and head == prefix and tail.isdigit() else None
