"""What each task reports to OpenLineage, built from what its run stashed (no Airflow run: the
operators are real, ``_lineage`` is set as ``execute``/``poke`` set it). The events of a real DAG
run are in tests/integration/test_openlineage.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from airflow.providers.openlineage.extractors.base import DefaultExtractor
from airflow.providers.openlineage.extractors.manager import ExtractorManager
from openlineage.client.serde import Serde

import airflow_mlops.openlineage as ol
from airflow_mlops.core.quality.verdict import summarize
from airflow_mlops.openlineage import facets
from airflow_mlops.operators.evaluation import EvaluateModelOperator
from airflow_mlops.operators.quality import DataQualityGateOperator
from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.sensors.drift import DataDriftSensor
from tests.unit.core.quality.samples import validation_result

REGISTRY = "https://alice:s3cret@mlflow.example.com/"
REGISTRY_NS = "https://mlflow.example.com"


def as_json(lineage) -> dict:
    """The lineage as it appears in the event: datasets and facets as JSON, producers dropped."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "_producer"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(
        {
            "inputs": [Serde.to_dict(d) for d in lineage.inputs],
            "outputs": [Serde.to_dict(d) for d in lineage.outputs],
            "run_facets": {k: Serde.to_dict(v) for k, v in lineage.run_facets.items()},
            "job_facets": {k: Serde.to_dict(v) for k, v in lineage.job_facets.items()},
        }
    )


def schema(name: str) -> str:
    return f"urn:airflow-mlops:0.1.0:openlineage:facets.json#/$defs/{name}"


MODEL_TYPE = {
    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetTypeDatasetFacet.json#/$defs/DatasetTypeDatasetFacet",
    "datasetType": "MODEL",
}


def version_facet(version: str) -> dict:
    return {
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
        "datasetVersion": version,
    }


def on_complete(task) -> dict:
    """What the OpenLineage provider extracts from the task at completion, through its own extractor."""
    extractor_class = ExtractorManager().get_extractor_class(task)
    assert extractor_class is DefaultExtractor
    lineage = extractor_class(task).extract_on_complete(task_instance=None)
    return as_json(lineage)


# ------------------------------------------------------------------------------------ the gate


def gate() -> DataQualityGateOperator:
    return DataQualityGateOperator(
        task_id="gate", data="s3://lake/churn/train.parquet", suite=[{"type": "x"}]
    )


def test_gate_reports_one_assertion_per_expectation_and_the_row_count():
    task = gate()
    result = validation_result()
    summary = summarize(result, fail_on="critical", row_count=10, data=task.data, suite="suite.json")
    summary["report_uri"] = "/reports/validation.html"
    task._lineage = (summary, result)

    out = on_complete(task)

    assert out["outputs"] == []
    assert out["run_facets"] == {
        "mlops_qualityGate": {
            "_schemaURL": schema("MlopsQualityGateRunFacet"),
            "success": False,
            "failOn": "critical",
            "evaluated": 4,
            "failed": 3,
            "blocking": 1,
            "suite": "suite.json",
            "reportUri": "/reports/validation.html",
        }
    }
    [data] = out["inputs"]
    assert (data["namespace"], data["name"], data["facets"]) == ("s3://lake", "churn/train.parquet", {})
    assert data["inputFacets"]["dataQualityMetrics"] == {
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-3/DataQualityMetricsInputDatasetFacet.json#/$defs/DataQualityMetricsInputDatasetFacet",
        "columnMetrics": {},
        "rowCount": 10,
    }
    assertions = data["inputFacets"]["dataQualityAssertions"]
    assert assertions["_schemaURL"].endswith("/DataQualityAssertionsDatasetFacet")
    assert assertions["assertions"] == [
        {
            "assertion": "expect_column_values_to_not_be_null",
            "success": True,
            "column": "id",
            "severity": "error",
            "name": "1:expect_column_values_to_not_be_null",
            "expected": "no nulls",
            "actual": "0 of 10 unexpected",
            "params": {"gxSeverity": "critical"},
        },
        {
            "assertion": "expect_column_values_to_be_in_set",
            "success": False,
            "column": "c",
            "severity": "warn",  # a warning does not fail the gate under fail_on="critical"
            "name": "2:expect_column_values_to_be_in_set",
            "expected": "values in ['a']",
            "actual": "1 of 10 unexpected",
            "params": {"gxSeverity": "warning"},
        },
        {
            "assertion": "expect_table_row_count_to_be_between",
            "success": False,
            "severity": "error",
            "name": "3:expect_table_row_count_to_be_between",
            "expected": "row count >= 100",
            "actual": "10",
            "params": {"gxSeverity": "critical"},
        },
        {
            "assertion": "expect_column_mean_to_be_between",
            "success": False,
            "column": "x",
            "severity": "warn",
            "name": "4:expect_column_mean_to_be_between",
            "expected": "mean <= 1",
            "actual": "2",
            "params": {"gxSeverity": "info"},
        },
    ]
    # the unexpected value GX sampled ("<script>") is row data: it stays out of the event
    assert "<script>" not in json.dumps(out)


def test_gate_severity_follows_fail_on():
    task = gate()
    result = validation_result()
    task._lineage = (summarize(result, fail_on="any", data=task.data), result)
    assertions = on_complete(task)["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [a["severity"] for a in assertions] == ["error"] * 4
    assert "dataQualityMetrics" not in on_complete(task)["inputs"][0]["inputFacets"]  # no row count


def test_gate_that_failed_before_validating_still_names_its_input():
    assert on_complete(gate()) == {
        "inputs": [
            {"namespace": "s3://lake", "name": "churn/train.parquet", "facets": {}, "inputFacets": {}}
        ],
        "outputs": [],
        "run_facets": {},
        "job_facets": {},
    }


# ------------------------------------------------------------------------------------ training


def trainer() -> TrainModelOperator:
    return TrainModelOperator(
        task_id="train",
        entrypoint="train.py",
        train_data="s3://lake/churn/train/",
        validation_data="/data/validation.csv",
        registered_model_name="churn",
    )


def test_training_reports_the_data_in_and_the_registered_version_out():
    task = trainer()
    task._lineage = {
        "spec": {"train_data": "s3://lake/churn/train/", "validation_data": "/data/validation.csv"},
        "code_version": "abc123",
        "code_hash": "sha256:c0de",
        "train_hash": "sha256:7a1n",
        "validation_hash": "sha256:va11d",
        "registry_uri": REGISTRY,
        "result": {
            "backend": "sagemaker",
            "job_id": "mlops-train-1",
            "console_url": "https://console.aws.amazon.com/sagemaker/jobs/mlops-train-1",
            "run_id": "r1",
            "model_uri": "models:/churn/4",
            "model_name": "churn",
            "model_version": "4",
            "metrics": {"f1": 0.8, "accuracy": 0.9},
        },
    }

    assert on_complete(task) == {
        "inputs": [
            {
                "namespace": "s3://lake",
                "name": "churn/train",
                "facets": {"version": version_facet("sha256:7a1n")},
                "inputFacets": {},
            },
            {
                "namespace": "file",
                "name": "/data/validation.csv",
                "facets": {"version": version_facet("sha256:va11d")},
                "inputFacets": {},
            },
        ],
        "outputs": [
            {
                "namespace": REGISTRY_NS,
                "name": "models/churn/4",
                "facets": {
                    "version": version_facet("4"),
                    "datasetType": MODEL_TYPE,
                    "mlops_modelVersion": {
                        "_schemaURL": schema("MlopsModelVersionDatasetFacet"),
                        "modelName": "churn",
                        "version": "4",
                        "modelUri": "models:/churn/4",
                        "runId": "r1",
                        "metrics": {"f1": 0.8, "accuracy": 0.9},
                    },
                },
                "outputFacets": {},
            }
        ],
        "run_facets": {
            "mlops_training": {
                "_schemaURL": schema("MlopsTrainingRunFacet"),
                "backend": "sagemaker",
                "jobId": "mlops-train-1",
                "mlflowRunId": "r1",
                "consoleUrl": "https://console.aws.amazon.com/sagemaker/jobs/mlops-train-1",
            }
        },
        "job_facets": {},
    }


def test_failed_training_reports_its_inputs_only():
    out = on_complete(trainer())
    assert [(d["namespace"], d["name"]) for d in out["inputs"]] == [
        ("s3://lake", "churn/train"),
        ("file", "/data/validation.csv"),
    ]
    assert out["outputs"] == [] and out["run_facets"] == {}


# ------------------------------------------------------------------------------------ evaluation


def evaluator() -> EvaluateModelOperator:
    return EvaluateModelOperator(
        task_id="evaluate",
        model_name="churn",
        candidate_version="4",
        eval_data="gs://lake/churn/eval.parquet",
        target="label",
        metric="f1",
    )


def test_evaluation_reports_data_and_both_versions_in_and_the_decision():
    task = evaluator()
    record = {
        "decision": "promote",
        "reasons": ["f1 0.8 beats the champion's 0.7 by 0.1 (> 0)"],
        "candidate": {"version": "4", "metrics": {"f1": 0.8}},
        "champion": {"version": "3", "metrics": {"f1": 0.7}},
    }
    task._lineage = (record, REGISTRY)

    out = on_complete(task)

    assert [(d["namespace"], d["name"], d["facets"]) for d in out["inputs"]] == [
        ("gs://lake", "churn/eval.parquet", {}),
        (REGISTRY_NS, "models/churn/4", {"version": version_facet("4"), "datasetType": MODEL_TYPE}),
        (REGISTRY_NS, "models/churn/3", {"version": version_facet("3"), "datasetType": MODEL_TYPE}),
    ]
    assert out["outputs"] == []
    assert out["run_facets"] == {
        "mlops_evaluation": {
            "_schemaURL": schema("MlopsEvaluationRunFacet"),
            "decision": "promote",
            "metric": "f1",
            "reasons": ["f1 0.8 beats the champion's 0.7 by 0.1 (> 0)"],
            "candidate": {"version": "4", "metrics": {"f1": 0.8}},
            "champion": {"version": "3", "metrics": {"f1": 0.7}},
        }
    }


def test_evaluation_without_a_champion():
    task = evaluator()
    record = {"decision": "promote", "reasons": ["bootstrap"], "candidate": {"version": "4", "metrics": {}}}
    task._lineage = ({**record, "champion": None}, REGISTRY)
    out = on_complete(task)
    assert [d["name"] for d in out["inputs"]] == ["churn/eval.parquet", "models/churn/4"]
    assert "champion" not in out["run_facets"]["mlops_evaluation"]


# ------------------------------------------------------------------------------------ alias moves


@pytest.mark.parametrize(
    ("task", "move"),
    [
        (
            PromoteModelOperator(task_id="promote", model_name="churn", version="4", reason="won"),
            {"version": "4", "previous_version": "3", "action": "promote", "reason": "won"},
        ),
        (
            RollbackModelOperator(task_id="rollback", model_name="churn", reason="bad canary"),
            {"version": "3", "previous_version": "4", "action": "rollback", "reason": "bad canary"},
        ),
    ],
    ids=["promote", "rollback"],
)
def test_alias_move_reports_the_version_in_and_the_alias_out(task, move):
    task._lineage = ({"model_name": "churn", "alias": "champion", "changed": True, **move}, REGISTRY)

    out = on_complete(task)

    assert out["inputs"] == [
        {
            "namespace": REGISTRY_NS,
            "name": f"models/churn/{move['version']}",
            "facets": {"version": version_facet(move["version"]), "datasetType": MODEL_TYPE},
            "inputFacets": {},
        }
    ]
    assert out["outputs"] == [
        {
            "namespace": REGISTRY_NS,
            "name": "models/churn@champion",
            "facets": {
                "version": version_facet(move["version"]),
                "datasetType": MODEL_TYPE,
                "mlops_aliasMove": {
                    "_schemaURL": schema("MlopsAliasMoveDatasetFacet"),
                    "action": move["action"],
                    "alias": "champion",
                    "version": move["version"],
                    "previousVersion": move["previous_version"],
                    "changed": True,
                    "reason": move["reason"],
                },
            },
            "outputFacets": {},
        }
    ]
    assert out["run_facets"] == {}


def test_first_promotion_has_no_previous_version_and_a_refused_move_reports_nothing():
    task = PromoteModelOperator(task_id="promote", model_name="churn", version="1")
    assert task.get_openlineage_facets_on_complete(None) is None  # refused before moving
    move = {"model_name": "churn", "alias": "champion", "version": "1", "previous_version": None}
    task._lineage = ({**move, "action": "promote", "changed": True, "reason": None}, REGISTRY)
    facet = on_complete(task)["outputs"][0]["facets"]["mlops_aliasMove"]
    assert "previousVersion" not in facet and "reason" not in facet  # null fields are left out


# ------------------------------------------------------------------------------------ drift


def drift_sensor(reference: str = "models:/churn@champion") -> DataDriftSensor:
    return DataDriftSensor(task_id="drift", reference=reference, current="/data/window.parquet")


def test_drift_reports_both_datasets_and_the_verdict():
    task = drift_sensor()
    task._lineage = {
        "drift_detected": True,
        "drift_share": 0.5,
        "drift_share_threshold": 0.5,
        "number_of_columns": 2,
        "number_of_drifted_columns": 1,
        "drifted_columns": ["x1"],
        "skipped_columns": ["const"],
        "per_column": {
            "x1": {"type": "num", "method": "ks", "score": 0.001, "threshold": 0.05, "drifted": True,
                   "reference_count": 300, "current_count": 200},
            "x2": {"type": "num", "method": "ks", "score": 0.4, "threshold": 0.05, "drifted": False,
                   "reference_count": 300, "current_count": 200},
            "const": {"skipped": "constant in both", "type": "num", "drifted": None},
        },
        "reference_rows": 300,
        "current_rows": 200,
        "reference": "s3://lake/churn/train/",
        "reference_model": "churn@champion (v3)",
        "current": "/data/window.parquet",
        "asset_uri": "x-mlops://drift/churn",
        "report_uri": None,
    }  # fmt: skip

    out = on_complete(task)

    assert [
        (d["namespace"], d["name"], d["inputFacets"]["dataQualityMetrics"]["rowCount"]) for d in out["inputs"]
    ] == [
        ("s3://lake", "churn/train", 300),
        ("file", "/data/window.parquet", 200),
    ]
    assert out["run_facets"] == {
        "mlops_drift": {
            "_schemaURL": schema("MlopsDriftRunFacet"),
            "driftDetected": True,
            "driftShare": 0.5,
            "driftShareThreshold": 0.5,
            "driftedColumns": ["x1"],
            "skippedColumns": ["const"],
            "columns": {
                "x1": {"method": "ks", "score": 0.001, "threshold": 0.05, "drifted": True},
                "x2": {"method": "ks", "score": 0.4, "threshold": 0.05, "drifted": False},
                "const": {"skipped": "constant in both"},  # null fields are left out
            },
            "referenceModel": "churn@champion (v3)",
            "assetUri": "x-mlops://drift/churn",
        }
    }


def test_drift_that_failed_before_comparing_reports_the_data_it_knows():
    assert [d["name"] for d in on_complete(drift_sensor())["inputs"]] == ["/data/window.parquet"]
    assert [d["name"] for d in on_complete(drift_sensor("/data/ref.parquet"))["inputs"]] == [
        "/data/ref.parquet",
        "/data/window.parquet",
    ]


# ------------------------------------------------------------------------------------ the facets


def test_custom_facets_match_their_shipped_json_schema():
    import jsonschema

    document = json.loads((Path(facets.__file__).with_name("facets.json")).read_text())
    assert document["$id"] == facets.SCHEMA_ID
    examples = [
        facets.MlopsQualityGateRunFacet(success=True, failOn="critical", evaluated=3, failed=0, blocking=0),
        facets.MlopsTrainingRunFacet(backend="local", jobId="j", mlflowRunId="r"),
        facets.MlopsModelVersionDatasetFacet(modelName="m", version="1", modelUri="models:/m/1", metrics={"f1": 1}),
        facets.MlopsEvaluationRunFacet(decision="reject", metric="f1", candidate={"version": "2", "metrics": {}}),
        facets.MlopsAliasMoveDatasetFacet(action="rollback", alias="champion", version="1", previousVersion="2"),
        facets.MlopsDriftRunFacet(driftDetected=False, driftShare=0.0, driftShareThreshold=0.5,
                                  columns={"a": {"method": "ks", "score": 0.3, "threshold": 0.05, "drifted": False}}),
    ]  # fmt: skip
    assert {type(f).__name__ for f in examples} == set(document["$defs"])
    for facet in examples:
        name = type(facet).__name__
        body = Serde.to_dict(facet)
        assert body["_schemaURL"] == f"{facets.SCHEMA_ID}#/$defs/{name}"
        own = document["$defs"][name]["allOf"][1]  # [0] is OpenLineage's base facet
        jsonschema.validate(body, own)
        assert set(own["required"]) <= set(body), name
        assert set(body) - {"_producer", "_schemaURL"} <= set(own["properties"]), name


# ------------------------------------------------------------------------------------ no provider


def test_without_the_openlineage_provider_every_builder_returns_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    for task in (
        gate(),
        trainer(),
        evaluator(),
        drift_sensor(),
        PromoteModelOperator(task_id="p", model_name="m", version="1"),
    ):
        task._lineage = None
        assert task.get_openlineage_facets_on_complete(None) is None
    assert ol.quality_gate_lineage(gate()) is None
