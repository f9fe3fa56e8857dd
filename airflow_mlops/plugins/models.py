"""The model page's content, built from what :meth:`MlflowHook.model_record` read: plain dicts that
the template renders and the JSON route returns.

History events are read only through :class:`~airflow_mlops.core.registry.HistoryEvent` and shown
field by field; fields this page does not know (a newer history format) are listed as they are,
and any ``action`` is shown by its name.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_mlops.core import tags

if TYPE_CHECKING:
    from airflow_mlops.hooks.mlflow import MlflowHook, ModelRecord

LINEAGE = (
    (tags.TRAIN_DATA_URI, "Training data"),
    (tags.TRAIN_DATA_HASH, "Training data sha256"),
    (tags.VALIDATION_DATA_URI, "Validation data"),
    (tags.VALIDATION_DATA_HASH, "Validation data sha256"),
    (tags.TARGET, "Target"),
    (tags.PARAMS, "Hyper-parameters"),
    (tags.METRICS, "Training metrics"),
    (tags.ENTRYPOINT, "Entrypoint"),
    (tags.CODE_VERSION, "Code version"),
    (tags.CODE_HASH, "Entrypoint sha256"),
    (tags.BACKEND, "Backend"),
    (tags.JOB_ID, "Training job"),
    (tags.JOB_CONSOLE_URL, "Job console"),
)
"""The lineage tags TrainModelOperator writes on a version, in the order the page lists them."""
_EVENT_FIELDS = ("seq", "action", "alias", "version", "previous_version", "at", "reason", "forced", "user",
                 "approved_by", "dag_id", "run_id", "task_id")  # fmt: skip
"""Shown in their own columns (the approval column reads the run's answers from Airflow, as the reader;
``approved_by`` is the registry's own record of the same answer, in the JSON view)."""


def run_path(dag_id: str | None, run_id: str | None) -> str | None:
    """The Airflow UI page of a DAG run (relative to the UI's root)."""
    if not dag_id or not run_id:
        return None
    return f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _when(millis: Any) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(int(millis) / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def event_view(event: Any) -> dict[str, Any]:
    """One history event; the other fields of a newer format go to ``other`` when they differ from
    their default (``status`` "done" of every event of the history proper, no ``note`` ...)."""
    data = dataclasses.asdict(event)
    defaults = {f.name: f.default for f in dataclasses.fields(event) if f.default is not dataclasses.MISSING}
    view = {key: data.get(key) for key in _EVENT_FIELDS}
    view["forced"] = bool(view["forced"])
    view["run_path"] = run_path(view["dag_id"], view["run_id"])
    view["other"] = {
        k: v
        for k, v in data.items()
        if k not in _EVENT_FIELDS and v not in (None, "", [], {}) and (k not in defaults or v != defaults[k])
    }
    return view


def evaluation_view(version_tags: dict[str, str]) -> dict[str, Any] | None:
    """The decision record EvaluateModelOperator stored on the version, or None."""
    record = _json(version_tags.get(tags.EVAL_RECORD))
    if not isinstance(record, dict):
        decision = version_tags.get(tags.EVAL_DECISION)
        return {"decision": decision, "reasons": [], "metrics": []} if decision else None
    candidate = record.get("candidate") or {}
    champion = record.get("champion") or {}
    names = sorted({*(candidate.get("metrics") or {}), *(champion.get("metrics") or {})})
    return {
        "decision": record.get("decision"),
        "reasons": list(record.get("reasons") or []),
        "champion_version": champion.get("version"),
        "metrics": [
            {
                "name": name,
                "candidate": (candidate.get("metrics") or {}).get(name),
                "champion": (champion.get("metrics") or {}).get(name),
            }
            for name in names
        ],
        "data": version_tags.get(tags.EVAL_DATA_URI),
    }


def model_view(record: ModelRecord, hook: MlflowHook) -> dict[str, Any]:
    """Everything the model page shows, as JSON-safe dicts."""
    model = record.model
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    versions = []
    for version in record.versions:
        number = str(version.version)
        version_tags = dict(version.tags or {})
        trained_by = run_path(version_tags.get(tags.AIRFLOW_DAG_ID), version_tags.get(tags.AIRFLOW_RUN_ID))
        versions.append(
            {
                "version": number,
                "aliases": sorted(a for a, v in aliases.items() if v == number),
                "created": _when(version.creation_timestamp),
                "status": str(version.status),
                "run_id": version.run_id,
                "mlflow_url": hook.model_version_url(model.name, number),
                "lineage": [
                    {"label": label, "value": version_tags[key]}
                    for key, label in LINEAGE
                    if version_tags.get(key)
                ],
                "trained_by": {
                    "dag_id": version_tags.get(tags.AIRFLOW_DAG_ID),
                    "run_id": version_tags.get(tags.AIRFLOW_RUN_ID),
                    "task_id": version_tags.get(tags.AIRFLOW_TASK_ID),
                    "run_path": trained_by,
                },
                "evaluation": evaluation_view(version_tags),
            }
        )
    return {
        "name": model.name,
        "description": model.description or "",
        "aliases": [{"alias": a, "version": v} for a, v in sorted(aliases.items())],
        "versions": versions,
        "history": {alias: [event_view(e) for e in events] for alias, events in record.history.items()},
        "mlflow_url": f"{hook.ui_base_url}/#/models/{quote(model.name, safe='')}"
        if hook.ui_base_url
        else None,
    }
