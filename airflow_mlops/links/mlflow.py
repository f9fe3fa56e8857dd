"""Extra links to the MLflow UI (the URL is stored by the task; see :mod:`airflow_mlops.links.base`)."""

from __future__ import annotations

from airflow_mlops.links.base import MlopsReportLink, XComUrlLink

__all__ = ["MlflowModelVersionLink", "MlflowRunLink", "MlopsReportLink"]


class MlflowModelVersionLink(XComUrlLink):
    """Opens the model version in the MLflow UI."""

    name = "MLflow model version"


class MlflowRunLink(XComUrlLink):
    """Opens the MLflow run that the task logged."""

    name = "MLflow run"
