"""OpenLineage support: what each airflow-mlops task reports, and how its datasets are named.

Active when ``apache-airflow-providers-openlineage`` is installed and configured (see
docs/guide/lineage.md). Importing this package imports neither the provider nor the OpenLineage
client: the builders import them when a task's lineage is extracted, after it ran.
"""

from __future__ import annotations

from airflow_mlops.openlineage.builders import (
    alias_move_lineage,
    drift_lineage,
    evaluation_lineage,
    quality_gate_lineage,
    training_lineage,
)
from airflow_mlops.openlineage.naming import (
    dataset_name,
    model_alias_name,
    model_version_name,
    registry_namespace,
)

__all__ = [
    "alias_move_lineage",
    "dataset_name",
    "drift_lineage",
    "evaluation_lineage",
    "model_alias_name",
    "model_version_name",
    "quality_gate_lineage",
    "registry_namespace",
    "training_lineage",
]
