"""Extra links whose URL the task stores in XCom at execute time.

The API server then shows the link without importing anything heavy: Airflow resolves extra links
from XCom there (``_link_<class name>``), and our ``get_link`` runs only on the worker, when the
task finishes, to produce that value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_mlops.core import tags
from airflow_mlops.plugins.routes import absolute, report_path

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import BaseOperator, Context


class XComUrlLink(BaseOperatorLink):
    """A link to a URL the task stored with :meth:`persist`; empty when it stored none."""

    name = "link"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value: Any = XCom.get_value(key=self.xcom_key, ti_key=ti_key)
        return value or ""

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        """Store ``url`` for this link on the running task instance (no-op for None)."""
        if url:
            context["ti"].xcom_push(key=cls().xcom_key, value=url)


class MlopsReportLink(XComUrlLink):
    """Opens the HTML report (quality gate or drift) the task wrote, through the airflow-mlops
    plugin of the API server: the browser cannot open the worker's ``file://`` path, and the plugin
    checks that the user may read the DAG before it serves the file.

    The task stores the report's URI (``file://...``, ``s3://...``) under the XCom key
    ``mlops_report_uri``; the link is the plugin page of that task instance. A report that already
    lives at an ``http(s)://`` URL is linked as it is.
    """

    name = "Report"
    uri_key = tags.XCOM_REPORT_URI
    """The XCom key under which the task stores the report's URI."""

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.configuration import conf
        from airflow.sdk.execution_time.xcom import XCom

        uri: Any = XCom.get_value(key=self.uri_key, ti_key=ti_key)
        if not uri:
            return ""
        if str(uri).startswith(("http://", "https://")):
            return str(uri)
        path = report_path(ti_key.dag_id, ti_key.run_id, ti_key.task_id, getattr(ti_key, "map_index", -1))
        return absolute(path, conf.get("api", "base_url", fallback=None))

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        """Store the report's URI (the link itself is made from it when the task finishes)."""
        if url:
            context["ti"].xcom_push(key=cls.uri_key, value=url)
