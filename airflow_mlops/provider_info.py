"""Provider metadata read by Airflow's ProvidersManager.

Stdlib only: Airflow imports this at every start-up of every component.
"""

from __future__ import annotations

_MLFLOW_CONN_FIELDS = {
    "registry_uri": {
        "label": "Registry URI",
        "description": "Model registry URI when it differs from the tracking URI (optional).",
        "schema": {"type": ["string", "null"]},
    },
    "token": {
        "label": "Token",
        "description": "Bearer token (MLFLOW_TRACKING_TOKEN); use instead of login/password.",
        "schema": {"type": ["string", "null"]},
        "sensitive": True,
    },
    "ui_url": {
        "label": "UI URL",
        "description": "Base URL of the MLflow UI for links, when it differs from the tracking URI.",
        "schema": {"type": ["string", "null"]},
    },
}

_AZURE_ML_CONN_FIELDS = {
    "tenant_id": {
        "label": "Tenant ID",
        "description": "Entra ID tenant of the service principal (blank: DefaultAzureCredential).",
        "schema": {"type": ["string", "null"]},
    },
    "subscription_id": {
        "label": "Subscription ID",
        "schema": {"type": ["string", "null"]},
    },
    "resource_group": {
        "label": "Resource group",
        "schema": {"type": ["string", "null"]},
    },
    "workspace_name": {
        "label": "Workspace name",
        "schema": {"type": ["string", "null"]},
    },
}


def get_provider_info() -> dict:
    from airflow_mlops.version import __version__

    return {
        "package-name": "airflow-mlops",
        "name": "MLOps (continuous training)",
        "description": "Continuous training for Apache Airflow: Great Expectations quality gates, "
        "training on the worker, SageMaker, Vertex AI or Azure ML, champion-vs-challenger "
        "evaluation, MLflow registry promotion with history and rollback, and Evidently drift "
        "sensing.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "MLflow", "external-doc-url": "https://mlflow.org/", "tags": ["software"]},
            {
                "integration-name": "Great Expectations",
                "external-doc-url": "https://greatexpectations.io/",
                "tags": ["software"],
            },
            {
                "integration-name": "Evidently",
                "external-doc-url": "https://www.evidentlyai.com/",
                "tags": ["software"],
            },
            {
                "integration-name": "Azure Machine Learning",
                "external-doc-url": "https://learn.microsoft.com/azure/machine-learning/",
                "tags": ["azure"],
            },
            {
                "integration-name": "Google Vertex AI",
                "external-doc-url": "https://cloud.google.com/vertex-ai",
                "tags": ["gcp"],
            },
        ],
        "operators": [
            {
                "integration-name": "MLflow",
                "python-modules": [
                    "airflow_mlops.operators.registry",
                    "airflow_mlops.operators.training",
                    "airflow_mlops.operators.evaluation",
                    "airflow_mlops.operators.deploy",
                    "airflow_mlops.operators.canary",
                ],
            },
            {"integration-name": "Great Expectations", "python-modules": ["airflow_mlops.operators.quality"]},
        ],
        "sensors": [
            {"integration-name": "Evidently", "python-modules": ["airflow_mlops.sensors.drift"]},
            {"integration-name": "MLflow", "python-modules": ["airflow_mlops.sensors.performance"]},
        ],
        "hooks": [
            {"integration-name": "MLflow", "python-modules": ["airflow_mlops.hooks.mlflow"]},
            {
                "integration-name": "Azure Machine Learning",
                "python-modules": ["airflow_mlops.hooks.azure_ml"],
            },
        ],
        "triggers": [
            {
                "integration-name": "Azure Machine Learning",
                "python-modules": ["airflow_mlops.triggers.azure_ml"],
            },
            {"integration-name": "Google Vertex AI", "python-modules": ["airflow_mlops.triggers.vertex_ai"]},
            {"integration-name": "MLflow", "python-modules": ["airflow_mlops.triggers.deploy"]},
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_mlops.hooks.mlflow.MlflowHook",
                "hook-name": "MLflow",
                "connection-type": "mlflow",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "extra"],
                    "relabeling": {"host": "Tracking URI", "login": "Username"},
                    "placeholders": {
                        "host": "http://mlflow.internal:5000 (blank: MLFLOW_TRACKING_URI or the embedded SQLite store)",
                        "login": "basic-auth user (optional)",
                        "password": "basic-auth password (optional)",
                    },
                },
                "conn-fields": _MLFLOW_CONN_FIELDS,
            },
            {
                "hook-class-name": "airflow_mlops.hooks.azure_ml.AzureMLHook",
                "hook-name": "Azure Machine Learning",
                "connection-type": "azure_ml",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "host", "extra"],
                    "relabeling": {"login": "Client ID", "password": "Client secret"},
                    "placeholders": {
                        "login": "service principal client id (blank: DefaultAzureCredential)",
                        "password": "service principal secret",
                    },
                },
                "conn-fields": _AZURE_ML_CONN_FIELDS,
            },
        ],
        # Also registered as the `airflow.plugins` entry point (pyproject.toml): Airflow 3.3 reads
        # this list only with [core] lazy_discover_providers = False, the entry point always.
        "plugins": [{"name": "airflow_mlops", "plugin-class": "airflow_mlops.plugins.ui.MlopsUiPlugin"}],
        "extra-links": [
            "airflow_mlops.links.mlflow.MlflowRunLink",
            "airflow_mlops.links.mlflow.MlflowModelVersionLink",
            "airflow_mlops.links.base.MlopsReportLink",
            "airflow_mlops.links.training.TrainingJobConsoleLink",
        ],
        "config": {
            "mlops": {
                "description": "Settings of the airflow-mlops provider.",
                "options": {
                    "registry_pool": {
                        "description": "Pool that PromoteModelOperator and RollbackModelOperator use by "
                        "default, so that moves of an MLflow alias queue in Airflow instead of contending "
                        "for the registry lock. Create it with one slot.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "mlops_registry",
                        "default": "mlops_registry",
                    },
                    **_TRUST_OPTIONS,
                    **_ENGINE_OPTIONS,
                    **_PLUGIN_OPTIONS,
                },
            },
        },
    }


# The deployment's side of the trust boundary (docs/security.md): a run's conf never reaches these.
# Defaults as in airflow_mlops.core.trust (not imported: this module stays stdlib-only; a test
# checks that the two agree).
_DATA_SCHEMES = "file,s3,s3a,gs,gcs,abfs,abfss,az,adl,wasb,wasbs,azureml"
_SKOPS_TYPES = "numpy.dtype,sklearn.tree._tree.Tree"
_TRUST_OPTIONS = {
    "allowed_data_schemes": {
        "description": "URI schemes data may be read from (comma-separated). http(s), ftp and other "
        "fetchers are off unless listed here: a trigger form must not make the worker fetch URLs.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "file,s3,gs",
        "default": _DATA_SCHEMES,
    },
    "allowed_data_roots": {
        "description": "Folders and URI prefixes data may be read from (comma-separated); empty: "
        "anywhere within allowed_data_schemes. Local paths are resolved (.., symbolic links) first.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "/data/ml,s3://ml-data/churn/",
        "default": "",
    },
    "require_approval": {
        "description": "Every promotion by PromoteModelOperator needs a recorded human approver "
        "(approved_by); the reference DAG then always routes promotions through its approval task.",
        "version_added": "0.1.0",
        "type": "boolean",
        "example": "True",
        "default": "False",
    },
    "force_promote_users": {
        "description": "Users (as the API server records the triggering user) who may force a "
        "promotion over the evaluation's verdict without a human approval (comma-separated). "
        "Everyone else's forced promotion waits for an approval.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "ml-lead",
        "default": "",
    },
    "trusted_pickle_models": {
        "description": "Registered models whose versions may be loaded with MLflow's own loader even "
        "when that runs code (pickle, cloudpickle, pyfunc PythonModel), comma-separated. Only for "
        "models whose every registrant you trust; skops models need no entry.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "legacy-churn",
        "default": "",
    },
    "trusted_skops_types": {
        "description": "Types trusted when loading skops-format models, beyond skops' defaults "
        "(comma-separated). The list a model records in its own MLmodel file is not used.",
        "version_added": "0.1.0",
        "type": "string",
        "example": _SKOPS_TYPES + ",xgboost.sklearn.XGBClassifier",
        "default": _SKOPS_TYPES,
    },
}


# DuckDB in the worker (docs/guide/data-at-scale.md); defaults as in airflow_mlops.io and
# airflow_mlops.engines.duckdb (a test checks that they agree).
_ENGINE_OPTIONS = {
    "duckdb_auto_rows": {
        "description": "engine='auto': parquet inputs with more rows than this (read from the footers) "
        "run on DuckDB in the worker instead of pandas.",
        "version_added": "0.1.0",
        "type": "integer",
        "example": "500000",
        "default": "2000000",
    },
    "duckdb_memory_limit": {
        "description": "DuckDB's memory_limit for the engine sessions of a task; larger inputs spill to "
        "a temporary folder.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "4GB",
        "default": "1GB",
    },
    "duckdb_threads": {
        "description": "DuckDB's threads for the engine sessions of a task.",
        "version_added": "0.1.0",
        "type": "integer",
        "example": "4",
        "default": "2",
    },
}


# Read by the UI plugin on the API server (docs/guide/ui.md); defaults as in
# airflow_mlops.plugins (a test checks that they agree).
_PLUGIN_OPTIONS = {
    "report_roots": {
        "description": "Folders and URI prefixes the report pages may serve from, besides "
        "$AIRFLOW_HOME/reports of the API server (comma-separated); empty: only that folder.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "s3://bucket/reports",
        "default": "",
    },
    "report_conn_id": {
        "description": "Airflow connection that reads reports under report_roots on object storage; "
        "empty: the filesystem's own credentials.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "aws_default",
        "default": "",
    },
    "rollback_dag_id": {
        "description": "The DAG the model page's Roll back button triggers (through Airflow's REST API, "
        "as the user); who may read it may open the model pages.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "mlops_rollback",
        "default": "mlops_rollback",
    },
    "mlflow_conn_id": {
        "description": "The MLflow connection whose registry the model pages read.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "mlflow_default",
        "default": "mlflow_default",
    },
}


def ui_field_behaviour(conn_type: str) -> dict:
    """The connection form's field behaviour for ``conn_type``, as declared above, in the shape of
    the hooks' ``get_ui_field_behaviour`` (``hidden_fields``, not ``hidden-fields``), which Airflow
    3.1 reads and validates; 3.2 and later read the provider info instead."""
    for entry in get_provider_info()["connection-types"]:
        if entry["connection-type"] == conn_type:
            return {key.replace("-", "_"): value for key, value in entry["ui-field-behaviour"].items()}
    return {}
