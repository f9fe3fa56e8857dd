"""Extra links: the task stores a URL with ``persist``; the API server reads it back in
``get_link``. XCom is patched where ``get_link`` reads it, backed by what the task instance pushed."""

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


@pytest.mark.parametrize(
    "link", [MlflowModelVersionLink, MlflowRunLink, MlopsReportLink, TrainingJobConsoleLink]
)
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
    assert MlflowRunLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == "https://mlflow.test/run"
    assert MlopsReportLink().get_link(mock.MagicMock(), ti_key=TI_KEY) == "file:///reports/report.html"


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
