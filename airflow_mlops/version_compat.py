"""Airflow names that moved between the supported releases (3.1 and later), in one place.

Names that ``apache-airflow-providers-common-compat`` maps (exceptions, ``conf``, base classes) are
imported from ``airflow.providers.common.compat.sdk``, as Airflow's own providers do. The
timetables the reference DAGs schedule with are not in that map: the task SDK exports them from
Airflow 3.2, and Airflow 3.1 has them in ``airflow.timetables``. Parse-light: nothing here imports
more than the DAG file would.
"""

from __future__ import annotations

try:
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
except ImportError:  # Airflow 3.1
    from airflow.timetables.assets import AssetOrTimeSchedule  # type: ignore[no-redef]
    from airflow.timetables.trigger import CronTriggerTimetable  # type: ignore[no-redef]

__all__ = ["AssetOrTimeSchedule", "CronTriggerTimetable"]
