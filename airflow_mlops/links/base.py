"""Extra links whose URL the task stores in XCom at execute time.

The API server then shows the link without importing anything heavy: ``get_link`` only reads the
URL back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

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
    """Opens the HTML report (quality gate or drift) the task wrote."""

    name = "Report"
