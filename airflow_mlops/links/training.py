"""Extra link to a training job in its cloud console (SageMaker, Vertex AI, Azure ML studio)."""

from __future__ import annotations

from airflow_mlops.links.base import XComUrlLink


class TrainingJobConsoleLink(XComUrlLink):
    """Opens the training job in its backend's console; empty for the local backend."""

    name = "Training job"
