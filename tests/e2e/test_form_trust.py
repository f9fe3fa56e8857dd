"""The trigger form as a user sees it, and its trust boundary, in ``airflow standalone`` and Chromium.

A user types a forbidden backend setting (``env``: the review's code-execution payload) into the
form's *Backend sizing* and presses Trigger: the form shows Airflow's refusal, naming the key
and the keys it takes, and no run is created. The same conf through the REST API gets the same
400. An allowed key (``timeout``) triggers a run that succeeds, so the form keeps what it could
do. On the way, the form's presentation (issue 14): backend names shown as titles, switches
without the red "required" marker, the advanced fields in their own section.
Screenshots go to tests/artifacts/ui/ (``form-trust-*``).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.system import AirflowApi, Service, ensure_system, stop_all, venv_env, wait_url
from tests.helpers.fixtures import REPO, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "mlops_continuous_training"
SHOTS = REPO / "tests" / "artifacts" / "ui"
TITLES = ["The Airflow worker (local)", "Amazon SageMaker", "Google Vertex AI", "Azure Machine Learning"]
PAYLOAD = '{"env": {"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "/bin/sh -c id #%s"}}'
RUN_TIMEOUT = 900


@pytest.fixture(scope="module")
def airflow_ui() -> Iterator[SimpleNamespace]:
    """``include/demo/standalone.py`` (what ``make airflow`` runs) with the reference DAGs."""
    root = Path(tempfile.mkdtemp(prefix="mlops-e2e-trust-"))
    port, password = free_port(), secrets.token_urlsafe(12)
    argv = [sys.executable, str(REPO / "include" / "demo" / "standalone.py"), "--port", str(port),
            "--mlflow-port", str(free_port()), "--no-mlflow-ui", "--home", str(root / "home"),
            "--dags", str(REPO / "dags"), "--user", "admin", f"--password={password}"]  # fmt: skip
    service = Service("standalone", argv, venv_env(), root)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_url(f"{url}/api/v2/monitor/health", 420, service)
        api = AirflowApi(url, "admin", password)
        api.wait_dag(DAG_ID, timeout=180, services=[service])
        api.patch(f"/dags/{DAG_ID}", {"is_paused": False})
        yield SimpleNamespace(url=url, api=api, service=service, password=password, home=root / "home")
    finally:
        stop_all([service], timeout=15)
        shutil.rmtree(root, ignore_errors=True)


def _runs(ui: SimpleNamespace) -> list[dict]:
    return ui.api.get(f"/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=20")["dag_runs"]


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"form-trust-{name}.png"), full_page=True)


def _set_json(page, form, text: str) -> None:
    """Replace the content of the form's JSON editor (Monaco) as a paste would."""
    form.locator(".monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.insert_text(text)


def test_the_rest_api_refuses_a_forbidden_backend_key_naming_it(airflow_ui):
    conf = {"backend": "sagemaker", "backend_config": {"role_arn": "arn:aws:iam::999999999999:role/Admin"}}
    request = urllib.request.Request(
        f"{airflow_ui.url}/api/v2/dags/{DAG_ID}/dagRuns",
        data=json.dumps({"logical_date": None, "conf": conf}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {airflow_ui.api.token()}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 400
    detail = json.loads(err.value.read())["detail"]
    assert detail.startswith(
        "Invalid input for param backend_config: 'role_arn' is not one of ['accelerator_count'"
    )
    assert _runs(airflow_ui) == []


def test_the_form_refuses_a_forbidden_key_with_a_readable_error_and_runs_an_allowed_one(airflow_ui):
    ensure_system("chromium")
    from playwright.sync_api import sync_playwright

    ui = airflow_ui
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(90_000)
            page.goto(ui.url)
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", ui.password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/auth/login" not in u)

            page.goto(f"{ui.url}/dags/{DAG_ID}")
            page.get_by_role("button", name="Trigger").first.click()
            form = page.get_by_role("dialog")
            form.locator("#element_train_data").wait_for()

            # the form as a user reads it: backend titles, plain switches, an Advanced section
            def label(text: str):
                return form.locator("label[data-part=label]", has_text=re.compile(rf"^{re.escape(text)}"))

            assert label("Training data").locator(".chakra-field__requiredIndicator").count() == 1
            assert label("Require a human approval").locator(".chakra-field__requiredIndicator").count() == 0
            form.get_by_role("combobox").first.click()
            page.get_by_role("option").first.wait_for()
            assert page.get_by_role("option").all_inner_texts() == TITLES
            page.get_by_role("option", name=TITLES[0], exact=True).click()
            form.get_by_role("button", name="Advanced", exact=True).click()
            label("Force the promotion").wait_for()
            assert label("Force the promotion").locator(".chakra-field__requiredIndicator").count() == 0
            assert form.get_by_text("Only sizing keys are accepted").count() == 1  # description_md
            _shot(page, "01-advanced")

            # a forbidden key: refused on Trigger, named, nothing runs
            _set_json(page, form, PAYLOAD)
            form.get_by_test_id("trigger-dag-submit").click()
            refusal = form.get_by_text(
                re.compile(r"Invalid input for param backend_config: 'env' is not one of")
            )
            refusal.wait_for()
            assert form.get_by_text("400 Bad Request").count() >= 1
            assert "'timeout'" in refusal.inner_text() and "'instance_type'" in refusal.inner_text()
            _shot(page, "02-forbidden-key-refused")
            assert _runs(ui) == []

            # an allowed key triggers a run, which trains with it and succeeds
            page.keyboard.press("Escape")
            form.wait_for(state="hidden")
            page.get_by_role("button", name="Trigger").first.click()
            form.locator("#element_train_data").wait_for()
            form.get_by_role("button", name="Advanced", exact=True).click()
            label("Force the promotion").wait_for()
            _set_json(page, form, '{"timeout": 900}')
            submit = form.get_by_test_id("trigger-dag-submit")
            _shot(page, "03-allowed-key")
            submit.click()
            run = _wait_for_run(ui)
            assert run["conf"]["backend_config"] == {"timeout": 900}
            _shot(page, "04-allowed-key-triggered")
        finally:
            browser.close()
    state = _wait_run(ui, run["dag_run_id"])
    tasks = ui.api.task_states(DAG_ID, run["dag_run_id"])
    assert state == "success", f"{tasks}\n{ui.api.logs_of_unfinished(DAG_ID, run['dag_run_id'])}"
    assert tasks["train"] == "success" and tasks["promote"] == "success", tasks
    assert 'Backend settings from the run: {"timeout": 900}' in ui.api.task_log(
        DAG_ID, run["dag_run_id"], "train"
    )


def _wait_for_run(ui: SimpleNamespace) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = _runs(ui)
        if runs:
            return runs[0]
        time.sleep(1)
    raise AssertionError("the trigger form created no run")


def _wait_run(ui: SimpleNamespace, run_id: str) -> str:
    """The run's final state; a request the busy API server answers late is asked again."""
    deadline = time.monotonic() + RUN_TIMEOUT
    state = None
    while time.monotonic() < deadline:
        if not ui.service.alive():
            raise RuntimeError(f"standalone exited:\n{ui.service.tail()}")
        try:
            state = ui.api.run_state(DAG_ID, run_id)
        except (TimeoutError, urllib.error.URLError):
            state = "unknown (the API server did not answer in time)"
        if state in ("success", "failed"):
            return state
        time.sleep(3)
    raise TimeoutError(f"run {run_id} still {state} after {RUN_TIMEOUT}s")
