"""Extra links to the MLflow UI and to reports.

The task stores the full URL in XCom under the link's ``xcom_key`` at execute time (the API
server shows it without importing anything heavy); ``get_link`` reads it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import BaseOperator, Context


class _XComUrlLink(BaseOperatorLink):
    name = "link"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        try:
            value: Any = XCom.get_value(key=self.xcom_key, ti_key=ti_key)
        except Exception:
            return ""
        return value or ""

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        """Store ``url`` for this link on the running task instance (no-op for None)."""
        if url:
            context["ti"].xcom_push(key=cls().xcom_key, value=url)


class MlflowModelVersionLink(_XComUrlLink):
    """Opens the model version in the MLflow UI."""

    name = "MLflow model version"


class MlflowRunLink(_XComUrlLink):
    """Opens the MLflow run that the task logged."""

    name = "MLflow run"


class MlopsReportLink(_XComUrlLink):
    """Opens the HTML report (quality gate or drift) the task wrote."""

    name = "Report"
