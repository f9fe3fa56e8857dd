"""The package's custom OpenLineage facets.

Imported only when lineage is extracted (it imports the OpenLineage client). Each facet is named
``Mlops<Name><Entity>Facet`` and sits under a key prefixed ``mlops_``, as the OpenLineage spec asks
of custom facets; its JSON schema is in ``facets.json`` beside this module (kept in step by
``tests/unit/openlineage``). Fields are camelCase like the spec's own facets.
"""

from __future__ import annotations

from typing import Any

from attr import define, field
from openlineage.client.generated.base import DatasetFacet, RunFacet

from airflow_mlops.version import __version__

SCHEMA_FILE = "facets.json"
SCHEMA_ID = f"urn:airflow-mlops:{__version__}:openlineage:{SCHEMA_FILE}"
"""Versioned identifier of ``facets.json`` (shipped in the package); the facets' ``_schemaURL``
points into it. Replace it with the file's immutable https URL once the project publishes one."""


def schema_url(definition: str) -> str:
    return f"{SCHEMA_ID}#/$defs/{definition}"


@define
class MlopsQualityGateRunFacet(RunFacet):
    """The data-quality gate's verdict (the assertions are on the input dataset)."""

    success: bool
    failOn: str
    evaluated: int
    failed: int
    blocking: int
    suite: str | None = field(default=None)
    reportUri: str | None = field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlopsQualityGateRunFacet")


@define
class MlopsTrainingRunFacet(RunFacet):
    """Where the model was trained and the MLflow run that logged it."""

    backend: str
    jobId: str
    mlflowRunId: str
    consoleUrl: str | None = field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlopsTrainingRunFacet")


@define
class MlopsModelVersionDatasetFacet(DatasetFacet):
    """A registered model version: its MLflow URI, the run that produced it and its metrics."""

    modelName: str
    version: str
    modelUri: str
    runId: str | None = field(default=None)
    metrics: dict[str, float] = field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlopsModelVersionDatasetFacet")


@define
class MlopsEvaluationRunFacet(RunFacet):
    """Champion vs challenger: the decision, its reasons and both sides' metrics."""

    decision: str
    metric: str
    reasons: list[str] = field(factory=list)
    candidate: dict[str, Any] = field(factory=dict)
    champion: dict[str, Any] | None = field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlopsEvaluationRunFacet")


@define
class MlopsAliasMoveDatasetFacet(DatasetFacet):
    """An alias moved (promotion or rollback): from which version to which, and why."""

    action: str
    alias: str
    version: str
    previousVersion: str | None = field(default=None)
    changed: bool = field(default=True)
    reason: str | None = field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlopsAliasMoveDatasetFacet")


@define
class MlopsDriftRunFacet(RunFacet):
    """The drift verdict: the share of drifted columns and each column's test."""

    driftDetected: bool
    driftShare: float
    driftShareThreshold: float
    driftedColumns: list[str] = field(factory=list)
    skippedColumns: list[str] = field(factory=list)
    columns: dict[str, dict[str, Any]] = field(factory=dict)
    referenceModel: str | None = field(default=None)
    assetUri: str | None = field(default=None)
    reportUri: str | None = field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("MlopsDriftRunFacet")
