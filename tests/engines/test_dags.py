"""The gate operator and the drift sensor on a Postgres table in a real Airflow run
(``dag.test()``): the summaries, the reports and the failure. (Passing gates, missing tables and
the other engines run the same code below the operators: the other files here.) (DuckDB and Spark run the same
code below the operator: ``test_drift.py`` and ``test_gate.py`` compare them.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.fixtures import DagRunner

pytestmark = pytest.mark.integration

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.operators.quality import DataQualityGateOperator
from airflow_mlops.sensors.drift import DataDriftSensor

SUITE = [
    {{"type": "expect_column_values_to_be_between", "kwargs": {{"column": "amount", "min_value": 0, "max_value": 100}}}},
    {{"type": "expect_column_values_to_be_in_set", "kwargs": {{"column": "country", "value_set": ["DE", "FR", "NL"]}},
      "severity": "warning"}},
]
sensor = dict(mode="poke", poke_interval=1, timeout=0, soft_fail=True, report_sample_size=500)
with DAG(dag_id="engines_{pg}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    DataQualityGateOperator(task_id="gate_pg_bad", data="sql://{pg}/{{{{ params.table }}}}", suite=SUITE,
                            params={{"table": "gate_bad"}})
    DataDriftSensor(task_id="drift_pg", reference="sql://{pg}/reference", current="sql://{pg}/current", **sensor)
"""


@pytest.fixture(scope="module")
def run(airflow_home, pg, engine_data):
    return DagRunner(Path(__import__("os").environ["AIRFLOW__CORE__DAGS_FOLDER"])).run(DAG.format(pg=pg))


def test_gate_on_a_table_fails_like_the_file_path(run):
    assert run.task_states["gate_pg_bad"] == "failed"
    bad = run.xcom("gate_pg_bad")  # pushed before the exception
    assert bad["engine"] == "sql" and Path(bad["report_uri"][len("file://") :]).is_file()
    assert bad["success"] is False and bad["data"] == "sql://mlops_engines_pg/gate_bad"
    blocking = [f for f in bad["failed"] if f["blocking"]]
    assert [f["column"] for f in blocking] == ["amount"] and "10 of 2000 values" in blocking[0]["message"]


def test_drift_sensor_on_postgres(run):
    assert run.task_states["drift_pg"] == "success"
    pg = run.xcom("drift_pg")
    assert pg["drift_detected"] is True and pg["engine"] == "sql"
    assert set(pg["drifted_columns"]) >= {"amount", "colour"}
    page = Path(pg["report_uri"][len("file://") :]).read_text()
    assert "a random sample drawn by sql of 500 of 3,000 reference rows" in page
