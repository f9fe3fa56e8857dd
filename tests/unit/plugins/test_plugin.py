"""The plugin's registration and the model page's content (the Report link: tests/unit/links)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from types import SimpleNamespace

from airflow_mlops.core import tags
from airflow_mlops.core.registry import HistoryEvent
from airflow_mlops.plugins.models import model_view
from tests.helpers.fixtures import REPO


def test_the_plugin_is_registered_by_entry_point_and_provider_info():
    from airflow_mlops.plugins.ui import MlopsUiPlugin
    from airflow_mlops.provider_info import get_provider_info

    pyproject = (REPO / "pyproject.toml").read_text()
    section = pyproject.split('[project.entry-points."airflow.plugins"]\n', 1)[1].split("\n[", 1)[0]
    assert 'airflow_mlops = "airflow_mlops.plugins.ui:MlopsUiPlugin"' in section
    [entry] = get_provider_info()["plugins"]
    assert entry == {"name": MlopsUiPlugin.name, "plugin-class": "airflow_mlops.plugins.ui.MlopsUiPlugin"}
    [view] = MlopsUiPlugin.external_views
    assert view["href"] == "mlops/models" and view["destination"] == "nav"


def test_loading_the_plugin_builds_no_web_app():
    """Task processes load plugins too: the FastAPI app is built only when the API server asks."""
    code = (
        "import sys; import airflow_mlops.plugins.ui, airflow_mlops.links.base; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette') "
        "or m.startswith('airflow.api_fastapi')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@dataclasses.dataclass
class _NewerEvent(HistoryEvent):
    """A history format with a field this page does not know yet."""

    approved_by: str | None = None


def test_the_model_page_shows_versions_history_evaluation_and_lineage():
    record = {"decision": "promote", "reasons": ["accuracy 0.81 beats 0.78"],
              "candidate": {"version": "2", "metrics": {"accuracy": 0.81}},
              "champion": {"version": "1", "metrics": {"accuracy": 0.78}}}  # fmt: skip
    v2 = SimpleNamespace(version=2, creation_timestamp=1_767_225_600_000, status="READY", run_id="r2", tags={
        tags.EVAL_RECORD: json.dumps(record), tags.TRAIN_DATA_URI: "s3://b/train.parquet",
        tags.AIRFLOW_DAG_ID: "training", tags.AIRFLOW_RUN_ID: "manual__1", tags.AIRFLOW_TASK_ID: "train"})  # fmt: skip
    v1 = SimpleNamespace(version=1, creation_timestamp=None, status="READY", run_id=None, tags={})
    history = [
        HistoryEvent(seq=1, action="promote", alias="champion", version="1", previous_version=None, at="t1"),
        _NewerEvent(
            seq=2,
            action="canary_complete",
            alias="champion",
            version="2",
            previous_version="1",
            at="t2",
            reason="<b>why</b>",
            forced=True,
            dag_id="training",
            run_id="manual__1",
            approved_by="alice",
        ),  # fmt: skip
    ]
    model = SimpleNamespace(name="churn", description=None, aliases={"champion": 2}, tags={})
    hook = SimpleNamespace(ui_base_url="http://mlflow:5000",
                           model_version_url=lambda name, v: f"http://mlflow:5000/#/models/{name}/versions/{v}")  # fmt: skip
    view = model_view(SimpleNamespace(model=model, versions=[v2, v1], history={"champion": history}), hook)

    assert view["aliases"] == [{"alias": "champion", "version": "2"}]
    assert [(v["version"], v["aliases"]) for v in view["versions"]] == [("2", ["champion"]), ("1", [])]
    newest = view["versions"][0]
    assert newest["created"] == "2026-01-01T00:00:00+00:00"
    assert newest["mlflow_url"] == "http://mlflow:5000/#/models/churn/versions/2"
    assert newest["trained_by"]["run_path"] == "dags/training/runs/manual__1"
    assert newest["lineage"] == [{"label": "Training data", "value": "s3://b/train.parquet"}]
    assert newest["evaluation"]["decision"] == "promote" and newest["evaluation"]["champion_version"] == "1"
    assert newest["evaluation"]["metrics"] == [{"name": "accuracy", "candidate": 0.81, "champion": 0.78}]
    assert view["versions"][1]["evaluation"] is None and view["versions"][1]["created"] is None
    first, second = view["history"]["champion"]
    assert (first["action"], first["previous_version"], first["forced"], first["other"]) == (
        "promote",
        None,
        False,
        {},
    )
    assert second["action"] == "canary_complete" and second["forced"] is True
    assert (
        second["approved_by"] == "alice"
        and second["other"] == {}
        and second["run_path"] == "dags/training/runs/manual__1"
    )
    json.dumps(view)  # the JSON route returns it as it is


def test_plugin_options_are_declared_with_the_codes_defaults():
    from airflow_mlops.hooks.mlflow import MlflowHook
    from airflow_mlops.plugins.routes import DEFAULT_ROLLBACK_DAG
    from airflow_mlops.provider_info import get_provider_info

    options = get_provider_info()["config"]["mlops"]["options"]
    assert options["rollback_dag_id"]["default"] == DEFAULT_ROLLBACK_DAG
    assert options["mlflow_conn_id"]["default"] == MlflowHook.default_conn_name
    assert options["report_roots"]["default"] == options["report_conn_id"]["default"] == ""
