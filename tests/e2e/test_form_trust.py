"""The trigger form as a user sees it, and its trust boundary, on the shared ``airflow standalone``.

A user types a forbidden backend setting (``env``: the review's code-execution payload) into the
form's *Backend sizing* and presses Trigger: the form shows Airflow's refusal, naming the key
and the keys it takes, and no run is created. The same conf through the REST API gets the same
400. On the way, the form's presentation (issue 14): backend names shown as titles, switches
without the red "required" marker, the advanced fields in their own section. That the form keeps
what it could do, an allowed key (``timeout``) triggering a run that trains with it and promotes,
is the UI test's run (test_ui.py), which sets it in the same field.

It runs on the stack every e2e test shares (tests/e2e/stack.py: PostgreSQL metadata, logs kept
on failure); run alone, it starts that stack itself.
Screenshots go to tests/artifacts/ui/ (``form-trust-*``).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from tests.e2e.stack import BACKEND_TITLES, TRAINING_DAG, Standalone, login, set_json, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = TRAINING_DAG
PAYLOAD = '{"env": {"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "/bin/sh -c id #%s"}}'


def _manual_runs(sa: Standalone) -> dict[str, dict]:
    """The DAG's manual runs (REST API or form) by run id: the only kind a refused conf could create."""
    runs = sa.api.get(f"/dags/{DAG_ID}/dagRuns?run_type=manual&order_by=-run_after&limit=100")["dag_runs"]
    return {run["dag_run_id"]: run for run in runs}


def _shot(page, name: str) -> None:
    shot(page, "ui", f"form-trust-{name}")


def test_the_rest_api_refuses_a_forbidden_backend_key_naming_it(standalone: Standalone) -> None:
    sa = standalone
    before = _manual_runs(sa)
    conf = {"backend": "sagemaker", "backend_config": {"role_arn": "arn:aws:iam::999999999999:role/Admin"}}
    request = urllib.request.Request(
        f"{sa.url}/api/v2/dags/{DAG_ID}/dagRuns",
        data=json.dumps({"logical_date": None, "conf": conf}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {sa.api.token()}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    body = err.value.read().decode(errors="replace")
    assert err.value.code == 400, body
    detail = json.loads(body)["detail"]
    assert detail.startswith(
        "Invalid input for param backend_config: 'role_arn' is not one of ['accelerator_count'"
    )
    assert _manual_runs(sa) == before


def test_the_form_refuses_a_forbidden_key_with_a_readable_error(
    standalone: Standalone, browser, pages
) -> None:
    sa = standalone
    before = _manual_runs(sa)
    page = login(browser, sa)
    pages.append(page)
    page.goto(f"{sa.url}/dags/{DAG_ID}")
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
    assert page.get_by_role("option").all_inner_texts() == BACKEND_TITLES
    page.get_by_role("option", name=BACKEND_TITLES[0], exact=True).click()
    form.get_by_role("button", name="Advanced", exact=True).click()
    label("Force the promotion").wait_for()
    assert label("Force the promotion").locator(".chakra-field__requiredIndicator").count() == 0
    assert form.get_by_text("Only sizing keys are accepted").count() == 1  # description_md
    _shot(page, "01-advanced")

    # a forbidden key: refused on Trigger, named with the keys it takes, nothing runs
    set_json(page, form, PAYLOAD)
    form.get_by_test_id("trigger-dag-submit").click()
    refusal = form.get_by_text(re.compile(r"Invalid input for param backend_config: 'env' is not one of"))
    refusal.wait_for()
    assert form.get_by_text("400 Bad Request").count() >= 1
    assert "'timeout'" in refusal.inner_text() and "'instance_type'" in refusal.inner_text()
    _shot(page, "02-forbidden-key-refused")
    assert _manual_runs(sa) == before
