"""Asset events emitted by airflow-mlops tasks, so other DAGs can be scheduled on them.

Every event URI is built here. They use Airflow's user-defined ``x-`` schemes, which Airflow
does not normalise through provider URI handlers, so parsing a DAG that names them imports
nothing heavy:

- ``x-mlflow://<model>@<alias>``: an alias moved (promotion, rollback);
- ``x-mlops://drift/<model or dataset>``: the drift sensor found drift;
- ``x-mlops://performance/<model>``: the performance sensor found decay.

A URI known when the DAG is parsed becomes a plain outlet ``Asset``; a URI that depends on
templated fields is emitted through an ``AssetAlias`` (Airflow resolves it at run time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias

from airflow_mlops.hooks.mlflow import MODELS_SCHEME, parse_model_uri
from airflow_mlops.templating import is_templated

if TYPE_CHECKING:
    from airflow.sdk import Context

MODEL_ALIAS_ASSET_ALIAS = "mlops_model_alias"
"""Alias through which an alias-move event is emitted when the model name is templated."""
DRIFT_ASSET_ALIAS = "mlops_drift"
"""Alias through which the drift event is emitted when its URI depends on templated fields."""
PERFORMANCE_ASSET_ALIAS = "mlops_performance"
"""Alias through which the decay event is emitted when the model name is templated."""

_SAFE = "-_.~@"
_DATA_SUFFIXES = (".parquet", ".pq", ".parq", ".csv.gz", ".csv", ".tsv")


def outlet_for(uri: str, alias_name: str) -> Asset | AssetAlias:
    """The outlet to declare in ``__init__`` for an event at ``uri``."""
    if is_templated(uri):
        return AssetAlias(alias_name)
    return Asset(uri)


def emit(context: Context, outlet: Asset | AssetAlias, uri: str, extra: dict[str, Any]) -> None:
    """Attach ``extra`` to the event Airflow records for ``outlet`` when the task succeeds."""
    events = context["outlet_events"]
    if isinstance(outlet, AssetAlias):
        events[outlet].add(Asset(uri), extra=extra)
    else:
        events[outlet].extra.update(extra)


def model_alias_uri(model_name: str, alias: str) -> str:
    """``x-mlflow://<model>@<alias>``: the asset a deploy DAG schedules on."""
    return f"x-mlflow://{model_name}@{alias}"


def drift_asset_uri(name: str) -> str:
    """``x-mlops://drift/<name>``: the Asset a retraining DAG schedules on (``name``: model or dataset)."""
    if is_templated(name):
        return f"x-mlops://drift/{name}"
    return f"x-mlops://drift/{quote(name, safe=_SAFE)}"


def performance_asset_uri(model_name: str) -> str:
    """``x-mlops://performance/<model_name>``: the Asset a retraining DAG can schedule on."""
    if is_templated(model_name):
        return f"x-mlops://performance/{model_name}"
    return f"x-mlops://performance/{quote(model_name, safe=_SAFE)}"


def model_name_of(model_uri: str) -> str:
    """The model name of a ``models:/`` reference, also when the rest of it is templated."""
    if is_templated(model_uri):
        return model_uri[len(MODELS_SCHEME) :].split("@")[0].split("/")[0]
    return parse_model_uri(model_uri)[0]


def dataset_name(uri: str) -> str:
    """A stable name for a data URI: its last path segment without the format suffix."""
    base = uri.rstrip("/").rsplit("/", 1)[-1] or uri
    for suffix in _DATA_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def subject_of(reference: str, model_name: str | None) -> str:
    """What a drift event is about: the model name, else the model of a ``models:/`` reference,
    else the reference dataset's name."""
    if model_name:
        return model_name
    if reference.startswith(MODELS_SCHEME):
        return model_name_of(reference)
    return dataset_name(reference)


def task_origin(context: Context) -> dict[str, Any]:
    """Who is acting: dag, run, task and triggering user, for history records and lineage."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "user": getattr(dag_run, "triggering_user_name", None),
    }
