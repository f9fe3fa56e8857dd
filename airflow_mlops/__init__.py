"""airflow-mlops: continuous training for Apache Airflow.

Public names resolve lazily so that provider discovery and DAG parsing import nothing heavy
(no pandas, mlflow, great_expectations or evidently at import time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_mlops.version import __version__

_LAZY: dict[str, str] = {
    "MlflowHook": "airflow_mlops.hooks.mlflow",
    "AzureMLHook": "airflow_mlops.hooks.azure_ml",
    "DataQualityGateOperator": "airflow_mlops.operators.quality",
    "TrainModelOperator": "airflow_mlops.operators.training",
    "EvaluateModelOperator": "airflow_mlops.operators.evaluation",
    "PromoteModelOperator": "airflow_mlops.operators.registry",
    "RollbackModelOperator": "airflow_mlops.operators.registry",
    "StartCanaryOperator": "airflow_mlops.operators.deploy",
    "CanaryStepOperator": "airflow_mlops.operators.deploy",
    "PromoteCanaryOperator": "airflow_mlops.operators.deploy",
    "AbortCanaryOperator": "airflow_mlops.operators.deploy",
    "CanaryAnalysisOperator": "airflow_mlops.operators.canary",
    "BatchScoreOperator": "airflow_mlops.operators.canary",
    "DataDriftSensor": "airflow_mlops.sensors.drift",
    "ModelPerformanceSensor": "airflow_mlops.sensors.performance",
    "AzureMLJobTrigger": "airflow_mlops.triggers.azure_ml",
    "MlflowRunLink": "airflow_mlops.links.mlflow",
    "MlflowModelVersionLink": "airflow_mlops.links.mlflow",
    "TrainingJobConsoleLink": "airflow_mlops.links.training",
    "MlopsError": "airflow_mlops.exceptions",
    "DataQualityGateFailed": "airflow_mlops.exceptions",
    "ModelRejected": "airflow_mlops.exceptions",
    "PromotionConflict": "airflow_mlops.exceptions",
    "TrainingJobFailed": "airflow_mlops.exceptions",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from airflow_mlops.exceptions import (
        DataQualityGateFailed,
        MlopsError,
        ModelRejected,
        PromotionConflict,
        TrainingJobFailed,
    )
    from airflow_mlops.hooks.azure_ml import AzureMLHook
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.links.mlflow import MlflowModelVersionLink, MlflowRunLink
    from airflow_mlops.links.training import TrainingJobConsoleLink
    from airflow_mlops.operators.canary import BatchScoreOperator, CanaryAnalysisOperator
    from airflow_mlops.operators.deploy import (
        AbortCanaryOperator,
        CanaryStepOperator,
        PromoteCanaryOperator,
        StartCanaryOperator,
    )
    from airflow_mlops.operators.evaluation import EvaluateModelOperator
    from airflow_mlops.operators.quality import DataQualityGateOperator
    from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator
    from airflow_mlops.operators.training import TrainModelOperator
    from airflow_mlops.sensors.drift import DataDriftSensor
    from airflow_mlops.sensors.performance import ModelPerformanceSensor
    from airflow_mlops.triggers.azure_ml import AzureMLJobTrigger


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_mlops' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
