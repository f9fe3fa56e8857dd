"""End to end: the airflow-mlops plugin in ``airflow standalone``, in headless Chromium.

On the shared stack (tests/e2e/stack.py), after the UI test's two runs (the first champion, then a
retrained one approved by ``admin``; made here when this file runs alone):

* the quality gate's *Report* link opens the report through the plugin, for a logged-in reader
  only; a report URI pointing out of the report roots is refused;
* *Browse -> Models -> churn* shows the versions, the champion history with reasons, forced flags
  and the approver, the evaluation records and lineage;
* *Roll back* as ``viewer`` is refused by Airflow (the action runs as the user); as ``admin`` it
  triggers ``mlops_rollback`` and the alias moves: the history then holds the demo's three events.

Screenshots are kept in tests/artifacts/plugin/; a failure keeps the logs (tests/artifacts/e2e-failure/).
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request

import pytest

from airflow_mlops.plugins.routes import model_path, report_path
from tests.e2e.stack import MODEL, ROLLBACK_DAG, RUN_TIMEOUT, TRAINING_DAG, Standalone, login, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPORT_KEY = "mlops_report_uri"


def _http(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def _model(sa: Standalone) -> dict | None:
    status, _, body = _http(f"{sa.url}/mlops/api/models/{MODEL}", sa.api.token())
    if status == 404:
        return None
    assert status == 200, body[:2000]
    return json.loads(body)


def _history(sa: Standalone) -> list[dict]:
    view = _model(sa)
    return view["history"]["champion"] if view else []


@pytest.fixture(scope="module")
def promoted_twice(standalone: Standalone) -> Standalone:
    """Two promotions of the champion: the UI test's runs, or two forced REST runs when it did not run."""
    sa = standalone
    while len([e for e in _history(sa) if e["action"] == "promote"]) < 2:
        conf = {"train_data": str(sa.data / "train.parquet"), "eval_data": str(sa.data / "eval.parquet"),
                "backend": "local", "backend_config": None, "require_approval": False, "force_promote": True,
                "reason": f"e2e: promotion for the plugin test ({secrets.token_hex(3)})"}  # fmt: skip
        run_id = sa.api.trigger(TRAINING_DAG, conf)
        sa.approve(TRAINING_DAG, run_id, "request_approval")  # a forced promotion always asks a human
        state = sa.api.wait_run(TRAINING_DAG, run_id, timeout=RUN_TIMEOUT, services=[sa.service])
        assert state == "success", sa.api.logs_of_unfinished(TRAINING_DAG, run_id)
    return sa


def _last_successful_run(sa: Standalone) -> str:
    runs = sa.api.get(f"/dags/{TRAINING_DAG}/dagRuns?order_by=-run_after&limit=20")["dag_runs"]
    return next(r["dag_run_id"] for r in runs if r["state"] == "success")


def test_report_link_opens_the_report_for_readers_only(promoted_twice: Standalone, browser, pages) -> None:
    sa = promoted_twice
    run_id = _last_successful_run(sa)
    link = report_path(TRAINING_DAG, run_id, "validate_train_data")
    assert sa.api.links(TRAINING_DAG, run_id, "validate_train_data")["Report"] == link
    stored = sa.api.xcom(TRAINING_DAG, run_id, "validate_train_data", key=REPORT_KEY)
    assert stored.startswith(f"file://{sa.home}/reports/quality/{TRAINING_DAG}/") and stored.endswith(".html")

    status, _, body = _http(sa.url + link)
    assert status == 401 and b"Data quality" not in body, (status, body[:500])
    status, headers, body = _http(sa.url + link, sa.api_as("viewer").token())
    assert status == 200, body[:2000]
    assert headers["content-type"].startswith("text/html") and headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert "connect-src 'none'" in headers["content-security-policy"]
    assert b"<title>Data quality: PASSED" in body

    # a stored URI out of the report roots (as a task could store it) is refused
    secret = sa.home / "secret.html"
    secret.write_text("<p>not a report: must not be served</p>")
    xcom = f"/dags/{TRAINING_DAG}/dagRuns/{run_id}/taskInstances/validate_eval_data/xcomEntries/{REPORT_KEY}"
    original = sa.api.xcom(TRAINING_DAG, run_id, "validate_eval_data", key=REPORT_KEY)
    other = report_path(TRAINING_DAG, run_id, "validate_eval_data")
    refusals = {
        f"file://{sa.home}/reports/../secret.html": b"outside the report roots",
        f"file://{secret}": b"outside the report roots",
        f"file://{sa.home}/airflow.cfg": b"not a report file",
        "file:///etc/passwd": b"not a report file",
    }
    try:
        for bad, reason in refusals.items():
            sa.api.patch(xcom, {"value": bad, "map_index": -1})
            status, _, body = _http(sa.url + other, sa.api.token())
            assert status == 404 and reason in body, (bad, status, body[-500:])
            assert b"must not be served" not in body and b"[core]" not in body and b"root:" not in body
    finally:
        sa.api.patch(xcom, {"value": original, "map_index": -1})
    assert _http(sa.url + other, sa.api.token())[0] == 200

    # in the Airflow UI: the task's details list the link, and it opens the report
    page = login(browser, sa)
    pages.append(page)
    page.goto(f"{sa.url}/dags/{TRAINING_DAG}/runs/{run_id}/tasks/validate_train_data/details")
    report = page.get_by_role("link", name="Report", exact=True)
    report.wait_for()
    shot(page, "plugin", "01-task-details-report-link")
    report.click()
    page.wait_for_url(lambda url: "/mlops/reports/" in url)
    page.get_by_text("PASSED").first.wait_for()
    shot(page, "plugin", "02-quality-report")


def test_model_page_shows_the_history_and_rolls_back_as_the_user(promoted_twice: Standalone, browser, pages):
    sa = promoted_twice
    for path in (model_path(MODEL), f"/mlops/api/models/{MODEL}", "/mlops/models"):
        status, _, body = _http(sa.url + path)
        assert status == 401 and b"History of" not in body and b"@champion" not in body, (path, status, body)
    before = _history(sa)
    assert [e["action"] for e in before] == ["promote", "promote"], before
    champion, target = before[-1]["version"], before[-1]["previous_version"]
    assert sa.champion() == champion and target

    # admin: Browse -> Models -> churn, inside the Airflow UI
    page = login(browser, sa)
    pages.append(page)
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Models").click()
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name=MODEL, exact=True).click()
    frame.get_by_role("heading", name="History of @champion").wait_for()  # the model's page, not the list
    frame.get_by_text(f"@champion → v{champion}").first.wait_for()
    rows = frame.locator("table.history tr.event")
    assert rows.count() == 2
    for row, event in zip(rows.all(), reversed(before), strict=True):  # newest first
        text = row.inner_text()
        assert event["reason"] in text, text
        assert row.locator("td.forced").inner_text() == ("forced" if event["forced"] else "no")
        answered = sa.api.get(f"/dags/{event['dag_id']}/dagRuns/{event['run_id']}/hitlDetails")[
            "hitl_details"
        ]
        approval = "Approve by admin" if any(d["response_received"] for d in answered) else "no approval step"
        row.locator("td.approval").get_by_text(approval).wait_for()
    assert frame.locator(f"article#v{champion} .decision").inner_text() in ("promote", "reject")
    frame.locator(f"article#v{champion} details.lineage summary").click()
    assert frame.locator(f"article#v{champion} details.lineage").get_by_text("Training data").count() >= 1
    shot(page, "plugin", "03-model-page")

    # a viewer reads the page, but Airflow refuses them the rollback: it runs as the user
    viewer = login(browser, sa, "viewer")
    pages.append(viewer)
    viewer.goto(sa.url + model_path(MODEL))
    viewer.fill("input[name=reason]", "e2e: a viewer tries to roll back")
    viewer.get_by_role("button", name="Roll back").click()
    viewer.get_by_text(re.compile(r"Airflow refused the rollback \(HTTP 403\)")).wait_for()
    shot(viewer, "plugin", "04-viewer-refused")
    assert sa.champion() == champion

    # admin rolls back: mlops_rollback runs, the alias moves, the history has the demo's three events
    reason = f"e2e: roll back from the model page ({secrets.token_hex(3)})"
    frame.locator("input[name=reason]").fill(reason)
    frame.get_by_role("button", name="Roll back").click()
    frame.get_by_text(f"@champion → v{target}").first.wait_for(timeout=RUN_TIMEOUT * 1000)
    assert frame.locator("table.history tr.event").count() == 3
    newest = frame.locator("table.history tr.event").first
    newest.locator("td.approval").get_by_text("no approval step").wait_for()  # a rollback asks nobody
    shot(page, "plugin", "05-rolled-back")
    assert sa.champion() == target
    after = _history(sa)
    assert [e["action"] for e in after] == ["promote", "promote", "rollback"]
    last = after[-1]
    assert (last["version"], last["previous_version"], last["reason"]) == (target, champion, reason)
    assert (last["dag_id"], last["user"]) == (ROLLBACK_DAG, "admin")
    run = sa.api.get(f"/dags/{ROLLBACK_DAG}/dagRuns/{last['run_id']}")
    assert run["conf"] == {"model_name": MODEL, "version": None, "reason": reason}
    assert run["triggering_user_name"] == "admin"
