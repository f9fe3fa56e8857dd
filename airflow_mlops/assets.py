"""Asset events emitted by airflow-mlops tasks, so other DAGs can be scheduled on them.

A URI known when the DAG is parsed becomes a plain outlet ``Asset``; a URI that depends on
templated fields is emitted through an ``AssetAlias`` (Airflow resolves it at run time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from airflow.sdk import Context


def outlet_for(uri: str, alias_name: str) -> Asset | AssetAlias:
    """The outlet to declare in ``__init__`` for an event at ``uri``."""
    if "{{" in uri or "{%" in uri:
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
