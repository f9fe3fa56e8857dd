"""Extra links: the task stores a URL with ``persist``; ``get_link`` reads it back when the task
finishes (the API server shows what it returned). XCom is patched where ``get_link`` reads it, backed
by what the task instance pushed. The Report link stores the report's URI and opens the UI plugin's
page of the task instance."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_mlops.links.base import MlopsReportLink
from airflow_mlops.links.mlflow import MlflowModelVersionLink, MlflowRunLink
from airflow_mlops.links.training import TrainingJobConsoleLink

TI_KEY = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1)


@pytest.fixture
def xcom():
    """An XCom store: the running task instance pushes into it, ``XCom.get_value`` reads from it."""
    store: dict[str, str] = {}
    ti = mock.MagicMock()
    ti.xcom_push.side_effect = lambda key, value: store.__setitem__(key, value)
    with mock.patch("airflow.sdk.execution_time.xcom.XCom", autospec=True) as patched:
        patched.get_value.side_effect = lambda *, ti_key, key: store.get(key)
        yield SimpleNamespace(store=store, context={"ti": ti}, get_value=patched.get_value)


@pytest.mark.parametrize("link", [MlflowModelVersionLink, MlflowRunLink, TrainingJobConsoleLink])
def test_a_persisted_url_is_what_the_link_opens(xcom, link):
    link.persist(xcom.context, "https://example.test/page")
    assert link().get_link(mock.MagicMock(), ti_key=TI_KEY) == "https://example.test/page"
    xcom.get_value.assert_called_once_with(key=link().xcom_key, ti_key=TI_KEY)


def test_no_url_stores_nothing_and_the_link_is_empty(xcom):
    MlflowRunLink.persist(xcom.context, None)
    assert xcom.store == {}
    assert MlflowRunLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == ""


def test_two_links_of_one_task_keep_their_own_urls(xcom):
    MlflowRunLink.persist(xcom.context, "https://mlflow.test/run")
    MlopsReportLink.persist(xcom.context, "file:///reports/report.html")
    assert xcom.store == {
        MlflowRunLink().xcom_key: "https://mlflow.test/run",
        MlopsReportLink.uri_key: "file:///reports/report.html",
    }
    assert MlflowRunLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == "https://mlflow.test/run"
    assert (
        MlopsReportLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == "/mlops/reports/d?run_id=r&task_id=t"
    )


@pytest.mark.parametrize(
    ("base_url", "ti_key", "expected"),
    [
        (None, TI_KEY, "/mlops/reports/d?run_id=r&task_id=t"),
        (
            "https://af.example.com/airflow/",
            SimpleNamespace(
                dag_id="train+it", task_id="gate", run_id="manual__2026-01-01T00:00:00+00:00", map_index=2
            ),
            "https://af.example.com/airflow/mlops/reports/train%2Bit?"
            "run_id=manual__2026-01-01T00%3A00%3A00%2B00%3A00&task_id=gate&map_index=2",
        ),
    ],
)
def test_the_report_link_opens_the_plugin_page_of_the_task_instance(xcom, base_url, ti_key, expected):
    """The browser cannot open the worker's file:// path: the API server's plugin serves the file,
    under the configured [api] base_url (which may carry a root path)."""
    with mock.patch("airflow.sdk.configuration.conf.get", autospec=True, return_value=base_url):
        MlopsReportLink.persist(xcom.context, "file:///worker/reports/quality/d/r/t/validation.html")
        assert MlopsReportLink().get_link(mock.MagicMock(), ti_key=ti_key) == expected
        xcom.get_value.assert_called_once_with(key=MlopsReportLink.uri_key, ti_key=ti_key)


def test_a_report_on_the_web_is_linked_as_it_is_and_none_is_no_link(xcom):
    assert MlopsReportLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == ""
    MlopsReportLink.persist(xcom.context, "https://reports.example.com/x.html")
    assert MlopsReportLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == "https://reports.example.com/x.html"


@pytest.mark.parametrize(
    ("link", "button"),
    [
        (MlflowModelVersionLink, "MLflow model version"),
        (MlflowRunLink, "MLflow run"),
        (MlopsReportLink, "Report"),
        (TrainingJobConsoleLink, "Training job"),
    ],
)
def test_each_link_has_its_button_name(link, button):
    assert link.name == button
