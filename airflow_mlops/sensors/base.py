"""What the package's sensors share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSkipException
from airflow.sdk import BaseSensorOperator

from airflow_mlops.exceptions import DataInputError

if TYPE_CHECKING:
    from airflow.sdk import Context


class StrictSensor(BaseSensorOperator):
    """A sensor whose bad input fails the task even with ``soft_fail``.

    ``soft_fail`` turns an ``AirflowFailException`` raised by ``poke`` into a skip; a skipped
    monitor looks exactly like "nothing happened", so unusable input must fail instead.
    """

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSkipException as err:
            if isinstance(err.__cause__, DataInputError):
                raise err.__cause__ from None
            raise
