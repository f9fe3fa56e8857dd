"""End to end through the Airflow UI path: ``airflow standalone``, the REST API, headless Chromium.

On the stack every e2e test shares (tests/e2e/stack.py: the launcher ``make airflow`` uses, the
reference DAGs, the embedded MLflow store and ``mlflow ui`` beside it): first a run is triggered
through the REST API with a conf, as the trigger form sends it; then a user's session in Debian's
Chromium (installed by tests/e2e/setup.sh when missing): log in, open the trigger form, check the
Params and the backend choices, trigger with ``require_approval`` and an allowed *Backend sizing*
key (``timeout``: the run trains with it), approve under Required Actions,
and follow the promote task's MLflow link. Screenshots are kept in tests/artifacts/ui/; a failure
keeps the logs too (tests/artifacts/e2e-failure/).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.parse
import urllib.request

import pytest

from tests.e2e.stack import (
    BACKEND_TITLES,
    MODEL,
    RUN_TIMEOUT,
    TRAINING_DAG,
    Standalone,
    login,
    set_json,
    shot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = TRAINING_DAG


def _wait_task(sa: Standalone, run_id: str, task_id: str, states: tuple[str, ...]) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        tasks = sa.api.task_states(DAG_ID, run_id)
        if tasks.get(task_id) in states:
            return tasks[task_id]
        if sa.api.run_state(DAG_ID, run_id) in ("failed", "success"):
            raise AssertionError(f"run ended before {task_id} reached {states}: {tasks}\n"
                                 f"{sa.api.logs_of_unfinished(DAG_ID, run_id)}")  # fmt: skip
        if not sa.service.alive():
            raise RuntimeError(f"standalone exited:\n{sa.service.tail()}")
        time.sleep(2)
    raise TimeoutError(
        f"{task_id} not in {states} after {RUN_TIMEOUT}s: {sa.api.task_states(DAG_ID, run_id)}"
    )


def _finish(sa: Standalone, run_id: str) -> dict[str, str | None]:
    state = sa.api.wait_run(DAG_ID, run_id, timeout=RUN_TIMEOUT, services=[sa.service])
    tasks = sa.api.task_states(DAG_ID, run_id)
    assert state == "success", f"run {state}: {tasks}\n{sa.api.logs_of_unfinished(DAG_ID, run_id)}"
    return tasks


def _check_promotion_and_link(sa: Standalone, run_id: str) -> str:
    """The champion is the version this run trained, and the promote task's link opens it."""
    trained = sa.api.xcom(DAG_ID, run_id, "train")
    promoted = sa.api.xcom(DAG_ID, run_id, "promote")
    version = str(trained["model_version"])
    assert trained["model_name"] == MODEL and promoted["model_name"] == MODEL
    assert str(promoted["version"]) == version and promoted["alias"] == "champion"
    assert str(sa.mlflow_client().get_model_version_by_alias(MODEL, "champion").version) == version

    expected = f"{sa.mlflow_url}/#/models/{MODEL}/versions/{version}"
    links = sa.api.links(DAG_ID, run_id, "promote")
    assert links.get("MLflow model version") == expected, links
    assert sa.api.xcom(DAG_ID, run_id, "promote", key="_link_MlflowModelVersionLink") == expected
    # the server behind the link knows that version, as champion
    query = urllib.parse.urlencode({"name": MODEL, "version": version})
    with urllib.request.urlopen(f"{sa.mlflow_url}/ajax-api/2.0/mlflow/model-versions/get?{query}") as resp:
        served = json.load(resp)["model_version"]
    assert served["version"] == version and "champion" in served.get("aliases", [])
    return version


def test_rest_triggered_run_promotes_a_champion_with_a_working_mlflow_link(standalone: Standalone) -> None:
    sa = standalone
    conf = {
        "train_data": str(sa.data / "train.parquet"),
        "eval_data": str(sa.data / "eval.parquet"),
        "backend": "local",
        "backend_config": None,
        "require_approval": False,
        "force_promote": False,
        "reason": "e2e: REST trigger with the form's fields",
    }
    run_id = sa.api.trigger(DAG_ID, conf)
    tasks = _finish(sa, run_id)
    assert tasks == {
        "validate_train_data": "success",
        "validate_eval_data": "success",
        "train": "success",
        "evaluate": "success",
        "decide_promotion": "success",
        "no_approval_needed": "success",
        "request_approval": "skipped",
        "promote": "success",
    }
    assert sa.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")["conf"] == conf
    decision = sa.api.xcom(DAG_ID, run_id, "evaluate")
    assert decision["decision"] == "promote", decision
    _check_promotion_and_link(sa, run_id)


def _shot(page, name: str) -> None:
    shot(page, "ui", name)


def test_trigger_form_approval_and_mlflow_link_in_chromium(standalone: Standalone, browser, pages) -> None:
    sa = standalone
    manifest = json.loads((sa.data / "manifest.json").read_text())
    drifted = [w for w in manifest["windows"] if w["drifted"]]
    train_window, eval_window = drifted[0]["path"], drifted[1]["path"]
    reason = f"e2e: retrain on the drifted window {drifted[0]['date']} ({secrets.token_hex(3)})"
    before = sa.mlflow_client().get_latest_versions(MODEL) if _has_model(sa) else []

    page = login(browser, sa)
    pages.append(page)
    _shot(page, "01-logged-in")

    # the trigger form renders the DAG's Params, with the backend choices
    page.goto(f"{sa.url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog")
    form.locator("#element_train_data").wait_for()
    for field in (
        "train_data",
        "eval_data",
        "backend",
        "require_approval",
        "force_promote",
        "reason",
    ):
        assert form.locator(f"[name=element_{field}]").count() == 1, f"form field {field} missing"
    for label in ("Training data", "Evaluation data", "Where to train", "Require a human approval",
                  "Force the promotion", "Reason"):  # fmt: skip
        # the label, followed by the required-field asterisk
        assert form.get_by_text(re.compile(rf"^{re.escape(label)}\s*\*?$")).count() >= 1, f"{label!r} missing"
    assert form.locator("input[name=element_backend]").input_value() == "local"
    form.get_by_role("combobox").first.click()
    options = page.get_by_role("option")
    options.first.wait_for()
    assert options.all_inner_texts() == BACKEND_TITLES
    _shot(page, "02-trigger-form-backend-choices")
    page.get_by_role("option", name=BACKEND_TITLES[0], exact=True).click()

    # fill it as a user would, with approval required, and trigger
    form.locator("#element_train_data").fill(train_window)
    form.locator("#element_eval_data").fill(eval_window)
    form.locator("#element_reason").fill(reason)
    approval = form.locator("input[name=element_require_approval]")
    assert not approval.is_checked()
    form.locator("label:has(input[name=element_require_approval])").click()
    assert approval.is_checked()
    # an allowed sizing key in the Advanced section's Backend sizing (test_form_trust.py: a
    # forbidden one is refused); the run trains with it
    form.get_by_role("button", name="Advanced", exact=True).click()
    form.get_by_text("Only sizing keys are accepted").wait_for()
    set_json(page, form, '{"timeout": 900}')
    submit = form.get_by_test_id("trigger-dag-submit")
    submit.scroll_into_view_if_needed()
    _shot(page, "03-trigger-form-filled")
    assert submit.is_enabled()
    submit.click()

    run = _find_run(sa, reason)
    run_id = run["dag_run_id"]
    assert run["conf"]["require_approval"] is True and run["conf"]["backend"] == "local"
    assert run["conf"]["train_data"] == train_window and run["conf"]["eval_data"] == eval_window
    assert run["conf"]["backend_config"] == {"timeout": 900}

    # the approval waits under Required Actions; answered once Airflow can take the answer
    _wait_task(sa, run_id, "request_approval", ("awaiting_input", "deferred"))
    sa.wait_parked(DAG_ID, run_id, "request_approval")
    candidate = str(sa.api.xcom(DAG_ID, run_id, "train")["model_version"])
    subject = f"Promote {MODEL} v{candidate} to @champion?"
    page.goto(f"{sa.url}/required_actions")
    page.get_by_role("link", name=subject).wait_for()
    _shot(page, "04-required-actions")
    page.get_by_role("link", name=subject).click()
    approve = page.get_by_role("button", name="Approve", exact=True)
    approve.wait_for()
    _shot(page, "05-approval-form")
    approve.click()

    tasks = _finish(sa, run_id)
    assert tasks["request_approval"] == "success" and tasks["promote"] == "success", tasks
    assert tasks["no_approval_needed"] == "skipped", tasks
    assert 'Backend settings from the run: {"timeout": 900}' in sa.api.task_log(DAG_ID, run_id, "train")
    approval = sa.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/request_approval")
    assert approval["try_number"] == 1, f"the approval was asked again: {approval}"
    detail = sa.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/request_approval/-1/hitlDetails")
    assert detail["chosen_options"] == ["Approve"] and detail["response_received"] is True
    assert detail["responded_by_user"]["name"] == "admin"
    decision = sa.api.xcom(DAG_ID, run_id, "evaluate")
    assert decision["decision"] == "promote" and str(decision["candidate"]["version"]) == candidate
    if before:  # the first test made a champion: the retrained model beat it on drifted data
        assert decision["champion"] is not None, decision
    assert _check_promotion_and_link(sa, run_id) == candidate

    page.goto(f"{sa.url}/dags/{DAG_ID}/runs/{run_id}")
    page.get_by_text("promote").first.wait_for()
    page.wait_for_timeout(1500)
    _shot(page, "06-run-after-approval")

    # the promote task's MLflow link opens that version in the MLflow UI
    link = sa.api.links(DAG_ID, run_id, "promote")["MLflow model version"]
    page.goto(link)
    page.get_by_text(f"Version {candidate}").first.wait_for()
    page.wait_for_timeout(1000)
    _shot(page, "07-mlflow-model-version")


def _has_model(sa: Standalone) -> bool:
    return bool(sa.mlflow_client().search_registered_models(filter_string=f"name='{MODEL}'"))


def _find_run(sa: Standalone, reason: str) -> dict:
    """The run the form just created, found by its unique reason."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = sa.api.get(f"/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=5")["dag_runs"]
        for run in runs:
            if (run.get("conf") or {}).get("reason") == reason:
                return run
        time.sleep(1)
    raise AssertionError(f"the trigger form created no run with reason {reason!r}")
