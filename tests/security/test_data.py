"""S5 and S6: data paths from the form read neither arbitrary worker files nor URLs.

The review's reproductions, as DAG runs of the real operators: a ``.env`` file given as training
data made the quality gate print its first line (a password) as a column name; an ``http://``
URI made the worker fetch it. Now a location is checked before anything is read: the scheme
against ``[mlops] allowed_data_schemes`` (no http by default), the folder against
``[mlops] allowed_data_roots``, and a local file must be a parquet or CSV file; the messages name
the input, never its content.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.security.conftest import ENTRYPOINT, SECRET, SUITE

pytestmark = pytest.mark.integration


@pytest.fixture
def http_secret():
    """An HTTP server on 127.0.0.1 serving a two-line "credentials" body; counts its requests."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            body = f"{SECRET}\nrole=admin\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data/creds.csv", hits
    server.shutdown()
    server.server_close()


DAG = """
import pendulum
from airflow.sdk import Param, dag
from airflow_mlops.operators.quality import DataQualityGateOperator
from airflow_mlops.operators.training import TrainModelOperator

@dag(dag_id="t_data_locations", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
     params={{"train_data": Param({train!r}, type="string")}})
def locations():
    DataQualityGateOperator(task_id="validate_train_data", data="{{{{ params.train_data }}}}", suite={suite!r})
    TrainModelOperator(task_id="train", entrypoint={entrypoint!r}, train_data="{{{{ params.train_data }}}}",
                       registered_model_name="never-registered", hyperparameters={{"target": "label"}})

locations()
"""


def test_worker_files_and_urls_are_not_read(dag_runner, churn_data, http_secret, capfd):
    url, hits = http_secret
    source = DAG.format(train=churn_data.train, suite=str(SUITE), entrypoint=str(ENTRYPOINT))
    for given, says in (
        (str(churn_data.env_file), "is not a parquet or CSV file"),
        (url, "uses the http:// scheme, which this deployment does not read data from"),
        (f"simplecache::{url}", "chains fsspec protocols"),
    ):
        run = dag_runner.run(source, conf={"train_data": given})
        logs = "".join(capfd.readouterr())
        assert run.task_states == {"validate_train_data": "failed", "train": "failed"}, logs[-3000:]
        assert f"ForbiddenInputError: quality gate data: not read: {given!r} {says}" in logs
        assert f"ForbiddenInputError: train_data: not read: {given!r} {says}" in logs
        assert "hunter2" not in logs and "DB_PASSWORD" not in logs
    assert hits == []  # the URL was never fetched


def test_only_the_deployments_data_roots_are_read(dag_runner, churn_data, monkeypatch, capfd, tmp_path):
    import pandas as pd

    outside = tmp_path / "hr" / "salaries.csv"
    outside.parent.mkdir()
    pd.read_parquet(churn_data.train).head(200).to_csv(outside, index=False)
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_ROOTS", str(churn_data.root))
    source = DAG.format(train=churn_data.train, suite=str(SUITE), entrypoint=str(ENTRYPOINT))
    for given in (str(outside), f"{churn_data.root}/../../{outside.relative_to(tmp_path.parent)}"):
        run = dag_runner.run(source, conf={"train_data": given})
        logs = "".join(capfd.readouterr())
        assert run.task_states["validate_train_data"] == "failed", logs[-3000:]
        assert f"not read: {given!r} is outside the folders this deployment reads data from" in logs
        assert "[mlops] allowed_data_roots" in logs
    # inside the root, the gate reads as before
    run = dag_runner.run(source.replace("TrainModelOperator(", "(lambda **kw: None)("), conf={})
    assert run.task_states == {"validate_train_data": "success"}
