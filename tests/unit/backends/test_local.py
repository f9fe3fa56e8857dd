"""The local backend on tiny scripts (no heavy imports, each a fraction of a second): a timeout
fails the job, a kill mid-run finds and stops it, the job sees neither Airflow's connections nor a
stale SM_MODEL_DIR nor the worker's cloud credentials (an allow-list), and an output without
model/ breaks the contract."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from airflow_mlops.backends.base import TrainingJobSpec
from airflow_mlops.backends.local import INHERITED, INHERITED_PREFIXES, LocalBackend
from airflow_mlops.exceptions import TrainingJobFailed

LOG = logging.getLogger("test.local")


@pytest.fixture
def sleeper(tmp_path: Path) -> TrainingJobSpec:
    script = tmp_path / "sleep.py"
    script.write_text("import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
    return TrainingJobSpec(entrypoint=str(script), train_data="unused", job_name="sleepy")


def test_timeout_fails_the_job(sleeper):
    handle = LocalBackend({"timeout": 1}, LOG).submit(sleeper)
    assert handle.status == "failed"
    assert "timeout" in handle.message


def test_a_kill_mid_run_finds_the_running_job_and_stops_it(sleeper):
    backend = LocalBackend({}, LOG)
    assert backend.find_job(sleeper) is None  # nothing started yet
    found: list = []

    def kill() -> None:  # what on_kill does while submit() blocks in the task's thread
        handle = backend.find_job(sleeper)
        found.append(handle)
        backend.cancel(handle)

    started = threading.Event()
    backend.log = _Notify(LOG, "[job] sleeping", started)
    timer = threading.Thread(target=lambda: started.wait(30) and kill())
    timer.start()
    cancelled = backend.submit(sleeper)
    timer.join()
    assert found[0].job_id == "sleepy" and found[0].status == "running"
    assert cancelled.status == "cancelled"
    assert backend.find_job(sleeper) is None  # ended: nothing left to find


def test_job_sees_a_scrubbed_environment_and_its_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SECRET_DB", "postgres://user:pw@host/db")
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    snoop = tmp_path / "snoop.py"
    snoop.write_text(
        "import os, sys\n"
        "print('conn', os.environ.get('AIRFLOW_CONN_SECRET_DB'), 'sm', os.environ.get('SM_MODEL_DIR'),"
        " 'extra', os.environ.get('MY_FLAG'), 'args', sys.argv[1:], file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    failed = LocalBackend({"env": {"MY_FLAG": "on"}}, LOG).submit(
        TrainingJobSpec(entrypoint=str(snoop), train_data="/d", params={"seed": 1}, job_name="snoop")
    )
    assert failed.status == "failed"
    assert "exited with code 3" in failed.message
    assert "conn None sm None extra on" in failed.message
    assert "'--train', '/d', '--params', '{\"seed\": 1}', '--output-dir'" in failed.message


CLOUD_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIA-RT42",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-RT42",
    "AZURE_CLIENT_SECRET": "azure-secret-RT42",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secrets/gcp-RT42.json",
    "DATABRICKS_TOKEN": "dapi-RT42",
    "VAULT_TOKEN": "hvs.RT42",
    "AIRFLOW_CTX_DAG_ID": "churn",
}


def test_the_job_environment_is_an_allow_list(tmp_path, monkeypatch):
    for key, value in CLOUD_SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    dump, out = tmp_path / "dump.py", tmp_path / "env.json"
    dump.write_text("import json, os\njson.dump(dict(os.environ), open(os.environ['DUMP_TO'], 'w'))\n")
    spec = TrainingJobSpec(entrypoint=str(dump), train_data="/d", job_name="dump")

    def job_environment(config: dict) -> dict[str, str]:
        env = {**config.pop("env", {}), "DUMP_TO": str(out)}
        LocalBackend({**config, "env": env}, LOG).submit(spec)
        return json.loads(out.read_text())

    seen = job_environment({"env": {"MY_FLAG": "on"}})
    assert not set(CLOUD_SECRETS) & set(seen)
    assert not [v for v in seen.values() if "RT42" in v]
    assert seen["MY_FLAG"] == "on" and seen["PATH"] == os.environ["PATH"] and seen["LC_ALL"] == "C.UTF-8"
    inherited = {k for k in seen if k in INHERITED or k.startswith(INHERITED_PREFIXES)}
    assert set(seen) - inherited == {"MY_FLAG", "DUMP_TO"}

    # the DAG author passes the worker's AWS credentials on by name, when the job needs them
    seen = job_environment({"inherit_env": ["AWS_*", "VAULT_TOKEN"]})
    assert seen["AWS_SECRET_ACCESS_KEY"] == "aws-secret-RT42" and seen["VAULT_TOKEN"] == "hvs.RT42"
    assert "AZURE_CLIENT_SECRET" not in seen and "DATABRICKS_TOKEN" not in seen


def test_inherit_env_must_be_a_list_of_names():
    with pytest.raises(ValueError, match="inherit_env must be a list"):
        LocalBackend({"inherit_env": "AWS_*"}, LOG)


def test_output_without_model_breaks_the_contract(tmp_path):
    script = tmp_path / "metrics_only.py"
    script.write_text(
        "import os, sys\nout = sys.argv[sys.argv.index('--output-dir') + 1]\nos.makedirs(out)\n"
        "open(os.path.join(out, 'metrics.json'), 'w').write('{}')\n"
    )
    backend = LocalBackend({}, LOG)
    handle = backend.submit(TrainingJobSpec(entrypoint=str(script), train_data="/d", job_name="half"))
    assert handle.status == "succeeded"
    with pytest.raises(
        TrainingJobFailed, match=r"the output of local job half has no model: .*<output-dir>/model"
    ):
        backend.fetch_output(handle, str(tmp_path / "fetched"))


def test_unknown_config_key_is_refused():
    with pytest.raises(ValueError, match=r"unknown local key\(s\) \['gpu'\]"):
        LocalBackend({"gpu": 1}, LOG)


class _Notify(logging.LoggerAdapter):
    """The task log, which also says when a given line appears (wait on a state, not the clock)."""

    def __init__(self, logger: logging.Logger, line: str, event: threading.Event) -> None:
        super().__init__(logger, {})
        self.line, self.event = line, event

    def info(self, msg, *args, **kwargs):
        if (msg % args if args else msg) == self.line:
            self.event.set()
        super().info(msg, *args, **kwargs)
