"""Azure ML backend and AzureMLHook: the real ``azure.ai.ml.entities.Command`` job is built and
checked field by field, the hook builds a real ``MLClient`` from an Airflow connection; only
``MLClient.jobs`` (the network side) is faked."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_mlops.backends.base import JobHandle, TrainingJobSpec, get_backend
from airflow_mlops.exceptions import DataInputError, MissingExtraError, MlopsError, TrainingJobFailed

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-mlops"
WS = "ws-mlops"
LOG = logging.getLogger("test.azure_ml")
CONN = {
    "conn_type": "azure_ml",
    "login": "11111111-2222-3333-4444-555555555555",
    "password": "s3cret",
    "extra": {"tenant_id": "tenant-1", "subscription_id": SUB, "resource_group": RG, "workspace_name": WS},
}


class FakeJobs:
    """The far side of ``MLClient.jobs``: jobs by name, statuses, outputs and run history."""

    def __init__(self) -> None:
        from azure.ai.ml.operations import JobOperations

        self.jobs: dict[str, object] = {}
        self.outputs: dict[str, dict[str, bytes]] = {}
        self.errors: dict[str, str] = {}
        self.ops = mock.create_autospec(JobOperations, instance=True)
        self.ops.get.side_effect = self.get
        self.ops.create_or_update.side_effect = self.create_or_update
        self.ops.download.side_effect = self.download
        self.ops.begin_cancel.side_effect = lambda name, **_: self.set_status(name, "CancelRequested")
        self.ops._runs_operations = SimpleNamespace(get_run=self.get_run)

    def get(self, name: str):
        from azure.core.exceptions import ResourceNotFoundError

        if name not in self.jobs:
            raise ResourceNotFoundError(f"job {name} not found")
        return self.jobs[name]

    def create_or_update(self, job, **_):
        created = job  # the service answers with the job it stored (the entity, with status and id)
        created._status = "Starting"
        created._id = (
            f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices"
            f"/workspaces/{WS}/jobs/{job.name}"
        )
        self.jobs[job.name] = created
        return created

    def set_status(self, name: str, status: str, error: str | None = None) -> None:
        self.jobs[name]._status = status
        if error:
            self.errors[name] = error

    def get_run(self, name: str):
        return SimpleNamespace(error=SimpleNamespace(error=SimpleNamespace(message=self.errors.get(name))))

    def download(self, name, *, download_path=".", output_name=None, all=False):
        base = Path(download_path) / "named-outputs" / output_name
        for rel, data in self.outputs.get(name, {}).items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(data)


@pytest.fixture
def fake(monkeypatch):
    from azure.ai.ml import MLClient

    monkeypatch.setenv("AIRFLOW_CONN_AZURE_ML_DEFAULT", json.dumps(CONN))
    fake = FakeJobs()
    monkeypatch.setattr(MLClient, "jobs", property(lambda self: fake.ops))
    return fake


@pytest.fixture
def entrypoint(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    script = code / "train.py"
    script.write_text("print('training')\n")
    return script


def _backend(**config):
    return get_backend("azure_ml", {"compute": "cpu-cluster", **config}, LOG)


def _spec(entrypoint: Path, **kw) -> TrainingJobSpec:
    values = {
        "entrypoint": str(entrypoint),
        "train_data": "azureml://datastores/workspaceblobstore/paths/churn/train.parquet",
        "validation_data": "abfss://data@mlopsstore.dfs.core.windows.net/churn/validation/",
        "params": {"target": "churned", "note": "it's quoted"},
        "job_name": "mlops-train-churn-abc123",
    }
    values.update(kw)
    return TrainingJobSpec(**values)


def test_command_job_field_by_field(entrypoint):
    from azure.ai.ml.entities import Command

    backend = _backend(
        instance_count=2,
        experiment_name="churn",
        environment_variables={"LOG": "1"},
        tags={"team": "ml"},
        timeout_seconds=3600,
        output_mode="upload",
    )
    job = backend.build_job(_spec(entrypoint), "mlops-train-churn-abc123")
    assert isinstance(job, Command)
    assert job.name == "mlops-train-churn-abc123"
    assert job.display_name == "mlops-train-churn-abc123"
    assert job.experiment_name == "churn"
    assert job.code == str(entrypoint.parent)
    assert job.command == (
        "python train.py --train ${{inputs.train}} --validation ${{inputs.validation}} "
        """--params '{"note": "it'"'"'s quoted", "target": "churned"}' --output-dir ${{outputs.model_output}}"""
    )
    assert job.environment == "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
    assert job.compute == "cpu-cluster"
    assert job.resources.instance_count == 2
    assert job.environment_variables == {"LOG": "1"}
    assert job.tags == {"airflow-mlops": "train", "team": "ml"}
    assert job.limits.timeout == 3600
    train, validation = job.inputs["train"], job.inputs["validation"]
    assert (train.type, train.path) == (
        "uri_file",
        "azureml://datastores/workspaceblobstore/paths/churn/train.parquet",
    )
    assert (validation.type, validation.path) == (
        "uri_folder",
        "abfss://data@mlopsstore.dfs.core.windows.net/churn/validation/",
    )
    output = job.outputs["model_output"]
    assert (output.type, output.mode) == ("uri_folder", "upload")


def test_serverless_local_data_and_abfs(entrypoint, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("a,label\n1,0\n")
    backend = get_backend(
        "azure_ml",
        {
            "instance_type": "Standard_DS3_v2",
            "storage_account": "mlopsstore",
            "environment": "azureml:my-env:3",
        },
        LOG,
    )
    job = backend.build_job(
        _spec(entrypoint, train_data=str(data), validation_data="abfs://data/churn/val.csv"), "j"
    )
    assert job.compute is None and job.resources.instance_type == "Standard_DS3_v2"
    assert job.environment == "azureml:my-env:3"
    assert (job.inputs["train"].type, job.inputs["train"].path) == (
        "uri_file",
        str(data),
    )  # uploaded by the SDK
    assert job.inputs["validation"].path == "abfss://data@mlopsstore.dfs.core.windows.net/churn/val.csv"


def test_bad_input_is_a_clear_error(entrypoint):
    with pytest.raises(
        DataInputError, match=r"train_data 's3://b/train.csv' cannot be read by an Azure ML job"
    ):
        _backend().build_job(_spec(entrypoint, train_data="s3://b/train.csv"), "j")
    with pytest.raises(DataInputError, match="names no storage account"):
        _backend().build_job(_spec(entrypoint, validation_data="abfs://data/x.csv"), "j")
    with pytest.raises(DataInputError, match=r"'/nope/train.csv' does not exist"):
        _backend().build_job(_spec(entrypoint, train_data="/nope/train.csv"), "j")
    with pytest.raises(ValueError, match=r"unknown Azure ML key\(s\) \['cluster'\]"):
        _backend(cluster="x")
    with pytest.raises(DataInputError, match=r"train_data 's3://b/train.csv' cannot be read"):
        _backend().validate(_spec(entrypoint, train_data="s3://b/train.csv"))
    with pytest.raises(DataInputError, match="is not a file"):
        _backend().validate(_spec(entrypoint.parent / "nope.py"))


def test_submit_creates_then_reattaches_and_reruns_after_failure(fake, entrypoint):
    handle = _backend().submit(_spec(entrypoint))
    assert handle.job_id == "mlops-train-churn-abc123" and handle.status == "running"  # Starting
    assert handle.console_url.startswith("https://ml.azure.com/runs/mlops-train-churn-abc123?wsid=")
    fake.ops.create_or_update.assert_called_once()
    (submitted,) = fake.ops.create_or_update.call_args.args
    assert submitted.command.startswith("python train.py --train ${{inputs.train}}")

    # a new try after a worker crash: the running job is reattached, not submitted twice
    fake.set_status(handle.job_id, "Running")
    again = _backend().submit(_spec(entrypoint))
    assert again.job_id == handle.job_id and again.status == "running"
    assert fake.ops.create_or_update.call_count == 1

    # job names are unique: after a failure, a re-run starts <name>-r2
    fake.set_status(handle.job_id, "Failed", error="UserError: column churned missing")
    fresh = _backend().submit(_spec(entrypoint))
    assert fresh.job_id == "mlops-train-churn-abc123-r2"
    assert fake.ops.create_or_update.call_args.args[0].name == "mlops-train-churn-abc123-r2"


def test_find_job_after_a_kill_mid_submit(fake, entrypoint):
    """on_kill's lookup: the live job of this task's name chain, never a failed one."""
    assert _backend().find_job(_spec(entrypoint)) is None
    handle = _backend().submit(_spec(entrypoint))
    assert _backend().find_job(_spec(entrypoint)).job_id == handle.job_id
    fake.set_status(handle.job_id, "Failed")
    assert _backend().find_job(_spec(entrypoint)) is None
    rerun = _backend().submit(_spec(entrypoint))
    assert _backend().find_job(_spec(entrypoint)).job_id == rerun.job_id == "mlops-train-churn-abc123-r2"


def test_poll_events_fetch_cancel(fake, entrypoint, tmp_path):
    backend = _backend()
    handle = backend.submit(_spec(entrypoint))

    fake.set_status(handle.job_id, "Running")
    waited = backend.handle_event(handle, {"status": "timeout", "message": "still Running after 60s"})
    assert waited.status == "failed" and "still Running after 60s" in waited.message

    fake.set_status(handle.job_id, "Failed", error="UserError: column churned missing")
    failed = backend.handle_event(handle, {"status": "failed", "message": "ended with status Failed"})
    assert failed.status == "failed"
    assert "column churned missing" in failed.message and handle.console_url in failed.message

    errored = backend.handle_event(handle, {"status": "error", "message": "cannot read Azure ML job"})
    assert (errored.status, errored.message) == ("failed", "cannot read Azure ML job")

    fake.set_status(handle.job_id, "Completed")
    done = backend.handle_event(handle, {"status": "success"})
    assert done.status == "succeeded"

    fake.outputs[handle.job_id] = {"model/MLmodel": b"flavors: {}\n", "metrics.json": b'{"f1": 0.8}'}
    out = Path(backend.fetch_output(done, str(tmp_path / "dl")))
    assert out == tmp_path / "dl" / "named-outputs" / "model_output"
    assert (out / "model" / "MLmodel").exists() and json.loads((out / "metrics.json").read_text()) == {
        "f1": 0.8
    }
    fake.ops.download.assert_called_with(
        handle.job_id, output_name="model_output", download_path=str(tmp_path / "dl")
    )

    fake.outputs[handle.job_id] = {"metrics.json": b"{}"}
    with pytest.raises(TrainingJobFailed, match="has no model"):
        backend.fetch_output(done, str(tmp_path / "dl2"))

    fake.set_status(handle.job_id, "Running")
    backend.cancel(handle)
    fake.ops.begin_cancel.assert_called_once_with(handle.job_id)


def test_trigger_from_backend(fake, entrypoint):
    from airflow_mlops.triggers.azure_ml import AzureMLJobTrigger

    backend = _backend(azure_ml_conn_id="azure_ml_default", timeout_seconds=600)
    trigger = backend.trigger(JobHandle(backend="azure_ml", job_id="j1"), poll_interval=15)
    assert isinstance(trigger, AzureMLJobTrigger)
    assert trigger.serialize()[1] == {
        "conn_id": "azure_ml_default",
        "job_name": "j1",
        "poll_interval": 15.0,
        "timeout": 4200.0,
    }


def test_missing_azure_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)
    with pytest.raises(MissingExtraError, match=r"airflow-mlops\[azure\]"):
        _backend()


# ---------------------------------------------------------------- hook


def test_hook_service_principal_builds_ml_client(monkeypatch):
    from azure.ai.ml import MLClient
    from azure.identity import ClientSecretCredential

    from airflow_mlops.hooks.azure_ml import AzureMLHook

    monkeypatch.setenv("AIRFLOW_CONN_AZURE_ML_DEFAULT", json.dumps(CONN))
    hook = AzureMLHook()
    client = hook.get_conn()
    assert isinstance(client, MLClient)
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (SUB, RG, WS)
    assert isinstance(client._credential, ClientSecretCredential)
    assert hook.get_conn() is client  # one client per hook


def test_hook_default_credential_and_errors(monkeypatch):
    from azure.identity import DefaultAzureCredential

    from airflow_mlops.hooks.azure_ml import AzureMLHook

    extra = CONN["extra"]
    monkeypatch.setenv("AIRFLOW_CONN_AZ_DEFAULT_CRED", json.dumps({"conn_type": "azure_ml", "extra": extra}))
    assert isinstance(AzureMLHook("az_default_cred").get_credential(), DefaultAzureCredential)

    monkeypatch.setenv(
        "AIRFLOW_CONN_AZ_NO_WS", json.dumps({"conn_type": "azure_ml", "extra": {"subscription_id": SUB}})
    )
    with pytest.raises(MlopsError, match="'az_no_ws' lacks resource_group, workspace_name"):
        AzureMLHook("az_no_ws").get_conn()

    monkeypatch.setenv("AIRFLOW_CONN_AZ_NO_SECRET", json.dumps({**CONN, "password": None}))
    with pytest.raises(MlopsError, match="has a client id but no client secret"):
        AzureMLHook("az_no_secret").get_credential()


def test_hook_test_connection(monkeypatch):
    from azure.ai.ml import MLClient

    from airflow_mlops.hooks.azure_ml import AzureMLHook

    monkeypatch.setenv("AIRFLOW_CONN_AZURE_ML_DEFAULT", json.dumps(CONN))
    workspaces = mock.MagicMock()
    monkeypatch.setattr(MLClient, "workspaces", property(lambda self: workspaces))
    workspaces.get.return_value = SimpleNamespace(name=WS)
    ok, message = AzureMLHook().test_connection()
    assert ok and WS in message and RG in message
    workspaces.get.assert_called_once_with(WS)

    workspaces.get.side_effect = PermissionError("AuthorizationFailed")
    ok, message = AzureMLHook().test_connection()
    assert not ok and "AuthorizationFailed" in message


def test_hook_form_matches_provider_info():
    from airflow_mlops.hooks.azure_ml import AzureMLHook
    from airflow_mlops.provider_info import get_provider_info

    (declared,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "azure_ml"]
    assert declared["hook-class-name"] == "airflow_mlops.hooks.azure_ml.AzureMLHook"
    behaviour = declared["ui-field-behaviour"]
    # the hook method's shape (Airflow 3.1 validates it): snake_case keys, the same values
    assert AzureMLHook.get_ui_field_behaviour() == {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }
    assert set(declared["conn-fields"]) == {
        "tenant_id",
        "subscription_id",
        "resource_group",
        "workspace_name",
    }
    assert (AzureMLHook.conn_type, AzureMLHook.default_conn_name) == ("azure_ml", "azure_ml_default")
