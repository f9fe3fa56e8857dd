"""The plugin app with Airflow's own authentication and authorisation, against a real MLflow server.

``airflow standalone`` always runs the simple auth manager, whose roles cannot hide one DAG from a
user; here the app runs with a subclass of it that can, so the refusal of a reader who may not see
a DAG is shown with a real auth manager (tokens, Airflow's ``get_user`` and ``requires_access_dag``).
"""

from __future__ import annotations

import json
import uuid

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from airflow_mlops.core import registry

pytestmark = pytest.mark.integration

HIDDEN = {"outsider": {"training", "mlops_rollback"}}


class DagScopedAuthManager(SimpleAuthManager):
    """The simple auth manager, except that ``outsider`` may not see the DAGs in ``HIDDEN``."""

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if details is not None and details.id in HIDDEN.get(user.get_name(), ()):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )


@pytest.fixture
def plugin(airflow_home, mlflow_server, monkeypatch):
    from airflow.api_fastapi.app import get_auth_manager, init_auth_manager, purge_cached_app
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_mlops.plugins.app import create_app

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", f"{__name__}.DagScopedAuthManager")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "reader:viewer,outsider:viewer")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", uuid.uuid4().hex)
    purge_cached_app()
    root = FastAPI()
    init_auth_manager(root)
    root.mount("/mlops", create_app())

    def headers(user: str | None) -> dict[str, str]:
        if user is None:
            return {}
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role="viewer"))
        return {"Authorization": f"Bearer {token}"}

    with TestClient(root) as client:
        yield client, headers
    purge_cached_app()


@pytest.fixture
def model(mlflow_server) -> str:
    """A registered model with two versions: promoted, promoted, rolled back (the demo's story)."""
    client = mlflow_server.client()
    name = f"plugin-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    for i in range(2):  # metadata only: the page never loads a model
        client.create_model_version(name, source=f"{run.info.artifact_uri}/model{i}", run_id=run.info.run_id)
    origin = {"dag_id": "training", "run_id": "manual__1", "task_id": "promote", "user": "alice"}
    registry.promote(client, name, "1", expected_current="none", reason="first model", origin=origin)
    registry.promote(client, name, "2", expected_current="1", reason="beat v1", forced=True, origin=origin)
    registry.rollback(client, name, reason="v2 misbehaves", origin={**origin, "dag_id": "mlops_rollback"})
    client.set_model_version_tag(name, "2", "mlops.eval.record", json.dumps({
        "decision": "reject", "reasons": ["does not beat v1"], "candidate": {"version": "2", "metrics": {"f1": 0.5}},
        "champion": {"version": "1", "metrics": {"f1": 0.6}}}))  # fmt: skip
    return name


def test_every_route_needs_a_login_and_the_dag(plugin, model):
    client, headers = plugin
    report = "/mlops/reports/training?run_id=manual__1&task_id=validate_train_data"
    routes = ("/mlops/models", f"/mlops/models/{model}", f"/mlops/api/models/{model}", report)
    for route in routes:
        anonymous = client.get(route, headers=headers(None), follow_redirects=False)
        assert anonymous.status_code == 401, route
        assert "misbehaves" not in anonymous.text  # the login link names the page, nothing of its content
        outsider = client.get(route, headers=headers("outsider"))
        assert outsider.status_code == 403, (route, outsider.text[:300])
        assert "misbehaves" not in outsider.text
    page = client.get(f"/mlops/models/{model}", headers=headers(None))
    assert "/auth/login?next=" in page.text  # the refusal page sends a browser to Airflow's login
    # a reader of the DAG gets past the check: this task instance stored no report
    found = client.get(report, headers=headers("reader"))
    assert found.status_code == 404 and "stored no report" in found.text


def test_the_model_page_reads_versions_history_and_evaluation_from_mlflow(plugin, model):
    client, headers = plugin
    view = client.get(f"/mlops/api/models/{model}", headers=headers("reader")).json()
    assert view["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v["version"] for v in view["versions"]] == ["2", "1"]
    history = view["history"]["champion"]
    assert [(e["action"], e["previous_version"], e["version"]) for e in history] == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
    ]
    assert [e["forced"] for e in history] == [False, True, False]
    assert history[-1]["reason"] == "v2 misbehaves" and history[-1]["user"] == "alice"
    assert view["versions"][0]["evaluation"]["metrics"] == [{"name": "f1", "candidate": 0.5, "champion": 0.6}]

    page = client.get(f"/mlops/models/{model}", headers=headers("reader"))
    assert page.status_code == 200 and "v2 misbehaves" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    # a viewer may not trigger the rollback DAG: the page says so (Airflow refuses it anyway)
    assert "Airflow does not let you trigger mlops_rollback" in page.text
    listing = client.get("/mlops/models", headers=headers("reader"))
    assert f">{model}</a>" in listing.text and ".mlops-lock." not in listing.text
    missing = client.get("/mlops/api/models/no-such-model", headers=headers("reader"))
    assert missing.status_code == 404 and "no model" in missing.json()["detail"]
