"""OpenLineage metadata of each airflow-mlops task, built from what the task produced.

Each operator and sensor keeps what its run produced in ``self._lineage`` and its
``get_openlineage_facets_on_complete`` calls one function here. The OpenLineage provider calls that
method after the task ends (success, failure or skip; with ``[openlineage] execute_in_thread``
off, in a forked copy of the task process), so these functions only read memory: no connection,
no MLflow call. Without ``apache-airflow-providers-openlineage`` they return None; the imports
happen here, never when a DAG is parsed.

What each task reports (dataset names: :mod:`airflow_mlops.openlineage.naming`):

- gate: the data as input, with the standard ``dataQualityAssertions`` (one assertion per
  expectation) and ``dataQualityMetrics`` (row count) input facets; ``mlops_qualityGate`` run facet;
- training: the training (and validation) data as inputs, each with its content hash as the
  ``version`` facet; the registered model version as output (``version``, ``datasetType`` MODEL,
  ``mlops_modelVersion``); ``mlops_training`` run facet;
- evaluation: the evaluation data, the candidate and the champion versions as inputs;
  ``mlops_evaluation`` run facet (decision, reasons, metrics);
- promotion and rollback: the version now holding the alias as input; the alias as output
  (``version``, ``datasetType`` MODEL, ``mlops_aliasMove``);
- drift sensor: the reference and current data as inputs (row counts); ``mlops_drift`` run facet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlops.openlineage.naming import (
    dataset_name,
    model_alias_name,
    model_version_name,
    registry_namespace,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

# what a lineage consumer gets per input at most: one assertion per expectation, one entry per column
MAX_ASSERTIONS = 500
MAX_COLUMNS = 500


def _available() -> bool:
    try:
        import airflow.providers.openlineage.extractors  # noqa: F401
        import openlineage.client.generated.base  # noqa: F401
    except ImportError:
        return False
    return True


def _state(operator: Any) -> Any:
    return getattr(operator, "_lineage", None)


def _text(value: Any) -> str | None:
    """A rendered templated field as text, or None when it is empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text if text and text.lower() != "none" else None


def _input(uri: str, *, facets: dict | None = None, input_facets: dict | None = None) -> Any:
    from openlineage.client.event_v2 import InputDataset

    namespace, name = dataset_name(uri)
    return InputDataset(namespace=namespace, name=name, facets=facets or {}, inputFacets=input_facets or {})


def _model_input(registry: str, model_name: str, version: str) -> Any:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(
        namespace=registry_namespace(registry),
        name=model_version_name(model_name, version),
        facets=_model_facets(version),
    )


def _model_facets(version: str) -> dict[str, Any]:
    from openlineage.client.generated.dataset_type_dataset import DatasetTypeDatasetFacet
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet

    return {
        "version": DatasetVersionDatasetFacet(datasetVersion=str(version)),
        "datasetType": DatasetTypeDatasetFacet(datasetType="MODEL"),
    }


def _row_count(rows: Any) -> dict[str, Any]:
    from openlineage.client.generated.data_quality_metrics_input_dataset import (
        DataQualityMetricsInputDatasetFacet,
    )

    if not isinstance(rows, int) or isinstance(rows, bool):
        return {}
    return {"dataQualityMetrics": DataQualityMetricsInputDatasetFacet(columnMetrics={}, rowCount=rows)}


def _build(cls: type, **kwargs: Any) -> Any:
    """``cls(**kwargs)`` without the fields an older OpenLineage client does not define."""
    import attr

    known = attr.fields_dict(cls)
    return cls(**{k: v for k, v in kwargs.items() if k in known and v is not None})


def _lineage(**kwargs: Any) -> OperatorLineage:
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(**kwargs)


# ------------------------------------------------------------------------------------ the gate


def quality_gate_lineage(operator: Any) -> OperatorLineage | None:
    """The gate's input with one assertion per expectation; ``operator._lineage`` holds
    ``(summary, full validation result)``."""
    if not _available():
        return None
    from airflow_mlops.openlineage.facets import MlopsQualityGateRunFacet

    data = _text(operator.data)
    if data is None:
        return None
    state = _state(operator)
    if state is None:  # failed before validating (unreadable suite or data)
        return _lineage(inputs=[_input(data)])
    summary, result = state
    input_facets = {"dataQualityAssertions": quality_assertions(result, summary["fail_on"])}
    input_facets.update(_row_count((summary.get("statistics") or {}).get("row_count")))
    failed = summary.get("failed") or []
    gate = MlopsQualityGateRunFacet(
        success=bool(summary["success"]),
        failOn=summary["fail_on"],
        evaluated=int(summary["evaluated"]),
        failed=len(failed),
        blocking=sum(1 for row in failed if row.get("blocking")),
        suite=summary.get("suite"),
        reportUri=summary.get("report_uri"),
    )
    return _lineage(inputs=[_input(data, input_facets=input_facets)], run_facets={"mlops_qualityGate": gate})


def quality_assertions(result: Mapping[str, Any], fail_on: str) -> Any:
    """The standard ``DataQualityAssertionsDatasetFacet`` of a GX validation result: one assertion
    per expectation, in suite order. ``severity`` is ``error`` when a failure would fail the gate
    under ``fail_on``, else ``warn``; the GX severity is in ``params``. Observed values are
    counts and statistics, never sample rows."""
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )

    from airflow_mlops.core.quality.describe import describe_result
    from airflow_mlops.core.quality.verdict import blocks

    assertions = []
    for item in list(result.get("results") or [])[:MAX_ASSERTIONS]:
        row = describe_result(item)
        column = row["column"]
        assertions.append(
            _build(
                Assertion,
                assertion=row["expectation"],
                success=row["success"],
                column=column if isinstance(column, str) else None,
                severity="error" if blocks(row["severity"], fail_on) else "warn",
                name=f"{row['position']}:{row['expectation']}" if row["position"] else row["expectation"],
                expected=row["expected"],
                actual=_observed(row["observed"]),
                params={"gxSeverity": row["severity"]}
                | ({"columns": column} if isinstance(column, list) else {}),
            )
        )
    return DataQualityAssertionsDatasetFacet(assertions=assertions)


def _observed(observed: Any) -> str | None:
    """What the expectation saw, as text: a count or a statistic (never the sample of values)."""
    if isinstance(observed, Mapping) and "unexpected_count" in observed:
        return f"{observed['unexpected_count']} of {observed['element_count']} unexpected"
    if isinstance(observed, (int, float, str)) and not isinstance(observed, bool):
        return str(observed)
    return None


# ------------------------------------------------------------------------------------ training


def training_lineage(operator: Any) -> OperatorLineage | None:
    """Training data in, the registered model version out; ``operator._lineage`` holds the job
    info (spec and data hashes), the result and the registry URI."""
    if not _available():
        return None
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet

    from airflow_mlops.openlineage.facets import MlopsModelVersionDatasetFacet, MlopsTrainingRunFacet

    state = _state(operator)
    if state is None:  # the job failed or nothing was registered: the inputs are still known
        uris = [_text(operator.train_data), _text(operator.validation_data)]
        return _lineage(inputs=[_input(uri) for uri in uris if uri])
    spec, result = state["spec"], state["result"]
    inputs = [
        _input(uri, facets={"version": DatasetVersionDatasetFacet(datasetVersion=digest)} if digest else {})
        for uri, digest in (
            (spec["train_data"], state.get("train_hash")),
            (spec.get("validation_data"), state.get("validation_hash")),
        )
        if uri
    ]
    name, version = result["model_name"], result["model_version"]
    model = OutputDataset(
        namespace=registry_namespace(state["registry_uri"]),
        name=model_version_name(name, version),
        facets={
            **_model_facets(version),
            "mlops_modelVersion": MlopsModelVersionDatasetFacet(
                modelName=name,
                version=str(version),
                modelUri=result["model_uri"],
                runId=result.get("run_id"),
                metrics=dict(result.get("metrics") or {}),
            ),
        },
    )
    job = MlopsTrainingRunFacet(
        backend=result["backend"],
        jobId=result["job_id"],
        mlflowRunId=result["run_id"],
        consoleUrl=result.get("console_url"),
    )
    return _lineage(inputs=inputs, outputs=[model], run_facets={"mlops_training": job})


# ------------------------------------------------------------------------------------ evaluation


def evaluation_lineage(operator: Any) -> OperatorLineage | None:
    """Evaluation data and both model versions in, the decision as a run facet;
    ``operator._lineage`` holds ``(decision record, registry URI)``."""
    if not _available():
        return None
    from airflow_mlops.openlineage.facets import MlopsEvaluationRunFacet

    data = _text(operator.eval_data)
    inputs = [_input(data)] if data else []
    state = _state(operator)
    if state is None:  # failed before deciding
        return _lineage(inputs=inputs)
    record, registry = state
    name = str(operator.model_name)
    for side in (record["candidate"], record.get("champion")):
        if side and side.get("version") is not None:
            inputs.append(_model_input(registry, name, str(side["version"])))
    decision = MlopsEvaluationRunFacet(
        decision=record["decision"],
        metric=str(operator.metric),
        reasons=[str(reason) for reason in record.get("reasons") or []],
        candidate=dict(record["candidate"]),
        champion=dict(record["champion"]) if record.get("champion") else None,
    )
    return _lineage(inputs=inputs, run_facets={"mlops_evaluation": decision})


# ------------------------------------------------------------------------------------ alias moves


def alias_move_lineage(operator: Any) -> OperatorLineage | None:
    """Promotion or rollback: the version now holding the alias in, the alias out;
    ``operator._lineage`` holds ``(move result with action and changed, registry URI)``."""
    if not _available():
        return None
    from openlineage.client.event_v2 import OutputDataset

    from airflow_mlops.openlineage.facets import MlopsAliasMoveDatasetFacet

    state = _state(operator)
    if state is None:  # refused or failed: nothing moved
        return None
    move, registry = state
    name, alias, version = move["model_name"], move["alias"], str(move["version"])
    previous = move.get("previous_version")
    target = OutputDataset(
        namespace=registry_namespace(registry),
        name=model_alias_name(name, alias),
        facets={
            **_model_facets(version),
            "mlops_aliasMove": MlopsAliasMoveDatasetFacet(
                action=move["action"],
                alias=alias,
                version=version,
                previousVersion=str(previous) if previous is not None else None,
                changed=bool(move.get("changed", True)),
                reason=move.get("reason"),
            ),
        },
    )
    return _lineage(inputs=[_model_input(registry, name, version)], outputs=[target])


# ------------------------------------------------------------------------------------ drift


def drift_lineage(operator: Any) -> OperatorLineage | None:
    """Reference and current data in, the verdict as a run facet; ``operator._lineage`` holds
    the last poke's summary."""
    if not _available():
        return None
    from airflow_mlops.openlineage.facets import MlopsDriftRunFacet

    summary = _state(operator)
    if summary is None:  # failed before comparing: the reference may be an unresolved models:/ URI
        uris = [_text(operator.current)]
        reference = _text(operator.reference)
        if reference and not reference.startswith("models:/"):
            uris.insert(0, reference)
        return _lineage(inputs=[_input(uri) for uri in uris if uri])
    inputs = [
        _input(summary["reference"], input_facets=_row_count(summary.get("reference_rows"))),
        _input(summary["current"], input_facets=_row_count(summary.get("current_rows"))),
    ]
    columns = {
        column: {
            k: verdict.get(k) for k in ("method", "score", "threshold", "drifted", "skipped") if k in verdict
        }
        for column, verdict in list((summary.get("per_column") or {}).items())[:MAX_COLUMNS]
    }
    verdict = MlopsDriftRunFacet(
        driftDetected=bool(summary["drift_detected"]),
        driftShare=float(summary["drift_share"]),
        driftShareThreshold=float(summary["drift_share_threshold"]),
        driftedColumns=list(summary.get("drifted_columns") or []),
        skippedColumns=list(summary.get("skipped_columns") or []),
        columns=columns,
        referenceModel=summary.get("reference_model"),
        assetUri=summary.get("asset_uri"),
        reportUri=summary.get("report_uri"),
    )
    return _lineage(inputs=inputs, run_facets={"mlops_drift": verdict})
