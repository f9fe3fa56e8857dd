"""TrainModelOperator's own logic, in milliseconds: the backend and the MLflow hook are patched
where the operator uses them (autospec), the task instance is a minimal fake. What a real
backend and a real MLflow server do is covered by tests/unit/backends and the integration tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlops.backends import base
from airflow_mlops.backends.base import JobHandle, TrainingBackend
from airflow_mlops.core import tags
from airflow_mlops.core.lineage import file_hash, job_name
from airflow_mlops.exceptions import (
    DataInputError,
    ForbiddenInputError,
    MissingExtraError,
    MlopsError,
    TrainingJobFailed,
)
from airflow_mlops.io import hash_table
from airflow_mlops.operators import training
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.triggers.azure_ml import AzureMLJobTrigger

DAG_ID, RUN_ID, TASK_ID = "churn", "manual__2024-01-01T00:00:00+00:00", "train"
JOB = job_name(DAG_ID, RUN_ID, TASK_ID)
METRICS = {"accuracy": 0.9, "f1": 0.8}
XCOM_KEYS = {
    "backend",
    "job_id",
    "console_url",
    "run_id",
    "model_uri",
    "model_name",
    "model_version",
    "metrics",
}


class FakeTI:
    """The task instance as the operator uses it: ids and XCom."""

    def __init__(self) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = DAG_ID, RUN_ID, TASK_ID, -1
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int | None = None) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcom.get(key)


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": FakeTI()}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    entrypoint = tmp_path / "code" / "train.py"
    entrypoint.parent.mkdir()
    entrypoint.write_text("print('train')\n")
    train = tmp_path / "train.csv"
    train.write_text("x,label\n1,0\n2,1\n")
    validation = tmp_path / "validation.csv"
    validation.write_text("x,label\n3,1\n")
    return {"entrypoint": entrypoint, "train": train, "validation": validation}


@pytest.fixture
def hook():
    with mock.patch("airflow_mlops.operators.training.MlflowHook", autospec=True) as cls:
        instance = cls.return_value
        instance.log_and_register.return_value = ("run-1", "exp-1", "3")
        instance.earlier_registration.return_value = None
        instance.run_url.return_value = "http://mlflow/#/experiments/exp-1/runs/run-1"
        instance.model_version_url.return_value = "http://mlflow/#/models/churn/versions/3"
        yield instance


def _backend(name: str) -> mock.NonCallableMagicMock:
    backend = mock.create_autospec(TrainingBackend, instance=True)
    backend.name = name
    backend.find_job.return_value = None
    return backend


@pytest.fixture
def local():
    backend = _backend("local")
    with mock.patch("airflow_mlops.operators.training.get_backend", autospec=True, return_value=backend):
        yield backend


@pytest.fixture
def cloud():
    backend = _backend("azure_ml")
    with mock.patch("airflow_mlops.operators.training.get_backend", autospec=True, return_value=backend):
        yield backend


def _operator(files: dict[str, Path], **kwargs: Any) -> TrainModelOperator:
    args: dict[str, Any] = {
        "task_id": TASK_ID,
        "entrypoint": str(files["entrypoint"]),
        "train_data": str(files["train"]),
        "validation_data": str(files["validation"]),
        "registered_model_name": "churn",
        "hyperparameters": {"target": "label", "seed": 7},
        "poll_interval": 0.01,
        **kwargs,
    }
    return TrainModelOperator(**args)


def _handle(backend: str, status: str, **kwargs: Any) -> JobHandle:
    return JobHandle(backend=backend, job_id=JOB, status=status, **kwargs)


def _writes_output(*parts: str):
    """A fetch_output that leaves the job's output (``model/MLmodel``, ``metrics.json``) in the folder."""

    def fetch_output(handle: JobHandle, local_dir: str) -> str:
        out = Path(local_dir) / "output"
        out.mkdir()
        if "model" in parts:
            (out / "model").mkdir()
            (out / "model" / "MLmodel").write_text("flavors: {}\n")
        if "metrics" in parts:
            (out / "metrics.json").write_text(json.dumps(METRICS))
        return str(out)

    return fetch_output


# ---------------------------------------------------------------- execute


def test_local_success_registers_with_lineage_and_returns_the_xcom_shape(files, context, hook, local):
    local.submit.return_value = _handle("local", "succeeded")
    local.fetch_output.side_effect = _writes_output("model", "metrics")

    result = _operator(files).execute(context)

    assert set(result) == XCOM_KEYS
    assert result == {
        "backend": "local",
        "job_id": JOB,
        "console_url": None,
        "run_id": "run-1",
        "model_uri": "models:/churn/3",
        "model_name": "churn",
        "model_version": "3",
        "metrics": METRICS,
    }
    (spec,) = local.submit.call_args.args
    assert (spec.job_name, spec.params) == (JOB, {"target": "label", "seed": 7})
    local.validate.assert_called_once_with(spec)
    hook.log_and_register.assert_called_once()
    call = hook.log_and_register.call_args
    assert call.args == ("churn",)
    assert (call.kwargs["experiment"], call.kwargs["run_name"]) == ("churn", JOB)
    assert call.kwargs["metrics"] == METRICS
    assert call.kwargs["model_dir"].endswith("/output/model")
    lineage = call.kwargs["tags"]
    assert lineage[tags.BACKEND] == "local" and lineage[tags.JOB_ID] == JOB
    assert lineage[tags.ENTRYPOINT] == "train.py"
    assert lineage[tags.CODE_HASH] == file_hash(str(files["entrypoint"]))
    assert lineage[tags.TRAIN_DATA_URI] == str(files["train"])
    assert lineage[tags.TRAIN_DATA_HASH] == hash_table(str(files["train"]))
    assert lineage[tags.VALIDATION_DATA_HASH] == hash_table(str(files["validation"]))
    assert json.loads(lineage[tags.PARAMS]) == {"target": "label", "seed": 7}
    assert (lineage[tags.AIRFLOW_DAG_ID], lineage[tags.AIRFLOW_RUN_ID], lineage[tags.AIRFLOW_TASK_ID]) == (
        DAG_ID,
        RUN_ID,
        TASK_ID,
    )
    assert tags.JOB_CONSOLE_URL not in lineage
    assert "http://mlflow/#/models/churn/versions/3" in context["ti"].xcom.values()


def test_a_retry_after_the_registration_returns_that_version_without_training_again(
    files, context, hook, local
):
    from airflow_mlops.hooks.mlflow_runs import Registration

    lineage = {
        tags.BACKEND: "local",
        tags.JOB_ID: JOB,
        tags.METRICS: json.dumps(METRICS),
        tags.TRAIN_DATA_HASH: "sha256:abc",
    }
    hook.earlier_registration.return_value = Registration("run-0", "exp-1", "2", lineage)

    result = _operator(files).execute(context)

    hook.earlier_registration.assert_called_once_with(
        "churn", {"dag_id": DAG_ID, "run_id": RUN_ID, "task_id": TASK_ID}, run_name=JOB
    )
    local.submit.assert_not_called()
    hook.log_and_register.assert_not_called()
    assert result == {
        "backend": "local",
        "job_id": JOB,
        "console_url": None,
        "run_id": "run-0",
        "model_uri": "models:/churn/2",
        "model_name": "churn",
        "model_version": "2",
        "metrics": METRICS,
    }
    hook.model_version_url.assert_called_once_with("churn", "2")


def test_a_bad_setting_fails_even_when_an_earlier_try_registered(files, context, hook, local):
    from airflow_mlops.hooks.mlflow_runs import Registration

    hook.earlier_registration.return_value = Registration("run-0", "exp-1", "2", {})
    local.validate.side_effect = ValueError("backend_config: instance_type is not a string")
    with pytest.raises(ValueError, match="instance_type"):
        _operator(files).execute(context)
    local.submit.assert_not_called()


def test_failed_job_raises_and_registers_nothing(files, context, hook, local):
    local.submit.return_value = _handle("local", "failed", message="entrypoint exited with code 1")
    with pytest.raises(TrainingJobFailed, match=f"training job {JOB} on local failed: entrypoint exited"):
        _operator(files).execute(context)
    local.fetch_output.assert_not_called()
    hook.log_and_register.assert_not_called()


def test_output_without_a_model_raises_and_registers_nothing(files, context, hook, local):
    local.submit.return_value = _handle("local", "succeeded")
    local.fetch_output.side_effect = _writes_output("metrics")
    with pytest.raises(
        TrainingJobFailed, match=r"wrote no MLflow model at model/ \(found \['metrics.json'\]\)"
    ):
        _operator(files).execute(context)
    hook.log_and_register.assert_not_called()


def test_bad_metrics_raise_and_register_nothing(files, context, hook, local):
    local.submit.return_value = _handle("local", "succeeded")
    local.fetch_output.side_effect = _writes_output("model")
    with pytest.raises(TrainingJobFailed, match="wrote no metrics file"):
        _operator(files).execute(context)
    hook.log_and_register.assert_not_called()


def test_invalid_input_fails_before_the_data_is_hashed_or_a_job_submitted(files, context, hook, local):
    local.validate.side_effect = DataInputError("train_data must be an s3:// URI")
    with (
        mock.patch("airflow_mlops.io.hash_table", autospec=True) as hashed,
        pytest.raises(DataInputError, match="s3:// URI"),
    ):
        _operator(files).execute(context)
    hashed.assert_not_called()
    local.submit.assert_not_called()


def test_cloud_backend_defers_with_its_trigger_and_the_kwargs_to_resume(files, context, hook, cloud):
    handle = _handle("azure_ml", "running", console_url="https://ml.azure.com/runs/x")
    cloud.submit.return_value = handle
    trigger = AzureMLJobTrigger(conn_id="azure_ml_default", job_name=JOB)
    cloud.trigger.return_value = trigger

    with pytest.raises(TaskDeferred) as deferred:
        _operator(files, backend="azure_ml", poll_interval=20).execute(context)

    assert deferred.value.trigger is trigger
    assert deferred.value.method_name == "execute_complete"
    kwargs = deferred.value.kwargs
    assert kwargs["handle"] == handle.to_dict()
    assert kwargs["info"]["spec"]["job_name"] == JOB
    assert kwargs["info"]["train_hash"] == hash_table(str(files["train"]))
    cloud.trigger.assert_called_once_with(handle, 20)
    # the copy dag.test() resumes from, and the console link, are in XCom
    ti = context["ti"]
    assert ti.xcom["training_job"] == kwargs
    assert "https://ml.azure.com/runs/x" in ti.xcom.values()
    hook.log_and_register.assert_not_called()


def test_cloud_backend_not_deferrable_waits_in_the_worker(files, context, hook, cloud):
    cloud.submit.return_value = _handle("azure_ml", "submitted")
    cloud.poll.side_effect = [_handle("azure_ml", "running"), _handle("azure_ml", "succeeded")]
    cloud.fetch_output.side_effect = _writes_output("model", "metrics")

    result = _operator(files, backend="azure_ml", deferrable=False).execute(context)

    assert result["backend"] == "azure_ml" and result["model_version"] == "3"
    cloud.trigger.assert_not_called()
    assert cloud.poll.call_count == 2


def test_backend_without_a_trigger_waits_in_the_worker(files, context, hook, cloud):
    cloud.submit.return_value = _handle("azure_ml", "submitted")
    cloud.trigger.return_value = None  # e.g. SageMaker without aiobotocore
    cloud.poll.return_value = _handle("azure_ml", "failed", message="quota")
    with pytest.raises(TrainingJobFailed, match="quota"):
        _operator(files, backend="azure_ml").execute(context)
    hook.log_and_register.assert_not_called()


# ---------------------------------------------------------------- resume after deferral


def _deferred_kwargs(files: dict[str, Path]) -> dict[str, Any]:
    spec = base.TrainingJobSpec(
        entrypoint=str(files["entrypoint"]),
        train_data=str(files["train"]),
        params={"target": "label"},
        job_name=JOB,
    )
    info = {
        "spec": spec.to_dict(),
        "code_version": "abc123",
        "code_hash": "sha256:0",
        "train_hash": "sha256:1",
        "validation_hash": None,
    }
    return {"handle": _handle("azure_ml", "running").to_dict(), "info": info}


def test_execute_complete_resumes_from_the_trigger_kwargs(files, context, hook, cloud):
    event = {"status": "success", "message": "ended"}
    cloud.handle_event.return_value = _handle("azure_ml", "succeeded", console_url="https://studio/x")
    cloud.fetch_output.side_effect = _writes_output("model", "metrics")

    result = _operator(files).execute_complete(context, event=event, **_deferred_kwargs(files))

    cloud.handle_event.assert_called_once_with(_handle("azure_ml", "running"), event)
    assert set(result) == XCOM_KEYS
    assert (result["backend"], result["console_url"]) == ("azure_ml", "https://studio/x")
    lineage = hook.log_and_register.call_args.kwargs["tags"]
    assert (lineage[tags.CODE_VERSION], lineage[tags.TRAIN_DATA_HASH]) == ("abc123", "sha256:1")
    assert lineage[tags.JOB_CONSOLE_URL] == "https://studio/x"


def test_execute_complete_resumes_from_the_xcom_copy(files, context, hook, cloud):
    context["ti"].xcom["training_job"] = _deferred_kwargs(files)
    cloud.handle_event.return_value = _handle("azure_ml", "succeeded")
    cloud.fetch_output.side_effect = _writes_output("model", "metrics")

    result = _operator(files).execute_complete(context, event={"status": "success"})

    assert result["job_id"] == JOB and result["model_version"] == "3"


def test_execute_complete_without_a_saved_handle_is_an_error(files, context, hook, cloud):
    with pytest.raises(MlopsError, match="without the job handle saved at deferral"):
        _operator(files).execute_complete(context, event={"status": "success"})
    cloud.handle_event.assert_not_called()


def test_failed_job_after_deferral_registers_nothing(files, context, hook, cloud):
    cloud.handle_event.return_value = _handle("azure_ml", "failed", message="out of memory")
    with pytest.raises(TrainingJobFailed, match=f"{JOB} on azure_ml failed: out of memory"):
        _operator(files).execute_complete(context, event={"status": "error"}, **_deferred_kwargs(files))
    cloud.fetch_output.assert_not_called()
    hook.log_and_register.assert_not_called()


# ---------------------------------------------------------------- on_kill


def test_on_kill_before_submission_cancels_nothing(files, cloud):
    _operator(files, backend="azure_ml").on_kill()
    cloud.find_job.assert_not_called()
    cloud.cancel.assert_not_called()


def test_on_kill_after_submission_cancels_that_job(files, context, hook, cloud):
    handle = _handle("azure_ml", "running")
    cloud.submit.return_value = handle
    cloud.trigger.return_value = AzureMLJobTrigger(conn_id="azure_ml_default", job_name=JOB)
    op = _operator(files, backend="azure_ml")
    with pytest.raises(TaskDeferred):
        op.execute(context)
    op.on_kill()
    cloud.cancel.assert_called_once_with(handle)
    cloud.find_job.assert_not_called()


def test_on_kill_inside_submit_cancels_the_job_found_by_its_name(files, context, hook, cloud):
    started = _handle("azure_ml", "running")
    cloud.find_job.return_value = started
    op = _operator(files, backend="azure_ml")

    def killed_mid_submit(spec):
        op.on_kill()  # the signal arrives before the create call has answered
        raise RuntimeError("task killed")

    cloud.submit.side_effect = killed_mid_submit
    with pytest.raises(RuntimeError, match="task killed"):
        op.execute(context)
    (spec,) = cloud.find_job.call_args.args
    assert spec.job_name == JOB
    cloud.cancel.assert_called_once_with(started)


def test_on_kill_inside_submit_with_no_job_started_cancels_nothing(files, context, hook, cloud):
    op = _operator(files, backend="azure_ml")

    def killed_mid_submit(spec):
        op.on_kill()
        raise RuntimeError("task killed")

    cloud.submit.side_effect = killed_mid_submit
    with pytest.raises(RuntimeError):
        op.execute(context)
    cloud.find_job.assert_called_once()
    cloud.cancel.assert_not_called()


def test_on_kill_after_the_job_ended_cancels_nothing(files, context, hook, local):
    local.submit.return_value = _handle("local", "succeeded")
    local.fetch_output.side_effect = _writes_output("model", "metrics")
    op = _operator(files)
    op.execute(context)
    op.on_kill()
    local.cancel.assert_not_called()


# ---------------------------------------------------------------- arguments and backends


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "kubernetes"}, "unknown backend 'kubernetes'"),
        ({"hyperparameters": [1, 2]}, "hyperparameters must be a dict"),
        ({"poll_interval": 0}, "poll_interval must be positive"),
        ({"train_data": ""}, "train_data is required"),
        ({"entrypoint": ""}, "entrypoint is required"),
        ({"registered_model_name": ""}, "registered_model_name is required"),
    ],
)
def test_bad_arguments_fail_at_parse(files, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _operator(files, **kwargs)


def test_templated_backend_that_renders_to_a_bad_name_fails_clearly(files, context, hook):
    op = _operator(files, backend="{{ params.backend }}")  # checked at run time instead
    op.backend = "kubernetes"  # what the template rendered to
    with pytest.raises(DataInputError, match=r"unknown training backend 'kubernetes'; choose one of \["):
        op.execute(context)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend_config": "{{ (params.backend_config or {}) | tojson }}"}, "must not be templated from the run's form"),
        ({"backend_config": {"env": {"A": "{{ dag_run.conf['a'] }}"}}}, "must not be templated from the run's form"),
        ({"backend_configs": {"local": {"python": "{{ params.python }}"}}}, "must not be templated from the run's form"),
        ({"backend_config": {}, "backend_configs": {"local": {}}}, "not both"),
        ({"backend_configs": {"kubernetes": {}}}, "must map backend names"),
        ({"allowed_overrides": "instance_type"}, "allowed_overrides must be a list"),
    ],
)  # fmt: skip
def test_the_dag_side_of_the_backend_settings_is_checked_at_parse(files, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _operator(files, **kwargs)


def test_a_dag_side_template_from_variables_is_fine(files):
    _operator(files, backend_config={"env": {"TOKEN": "{{ var.value.token }}"}})


def test_the_form_sizes_the_job_over_the_dags_settings(files, context, hook, local):
    local.submit.return_value = _handle("local", "failed")
    configs = {"local": {"python": "/opt/py/bin/python", "timeout": 600}, "sagemaker": {"role_arn": "r"}}
    op = _operator(files, backend_configs=configs, backend_overrides='{"timeout": 60}')
    with pytest.raises(TrainingJobFailed):
        op.execute(context)
    get = training.get_backend  # patched by the `local` fixture
    assert get.call_args.args[:2] == ("local", {"python": "/opt/py/bin/python", "timeout": 60})


@pytest.mark.parametrize(
    ("overrides", "allowed", "match"),
    [
        ({"env": {"BROWSER": "/bin/sh -c id #%s"}, "timeout": 5}, None, r"'env' may not come from the trigger form"),
        ({"python": "/bin/sh"}, None, r"'python' may not come from the trigger form"),
        ('{"keep_workdir": true}', None, r"'keep_workdir' .*the DAG does not let a run choose it"),
        ({"timeout": 5}, [], r"'timeout' .*a run may set no backend setting"),
        ({"timeout": {"x": 1}}, None, "must be a number, a boolean or a short string"),
    ],
)  # fmt: skip
def test_a_forbidden_form_setting_fails_before_anything_is_read_or_started(
    files, context, hook, overrides, allowed, match
):
    op = _operator(files, backend_overrides=overrides, allowed_overrides=allowed)
    with (
        mock.patch("airflow_mlops.operators.training.get_backend", autospec=True) as get,
        mock.patch("airflow_mlops.io.hash_table", autospec=True) as hashed,
        pytest.raises(ForbiddenInputError, match=match),
    ):
        op.execute(context)
    get.assert_not_called()
    hashed.assert_not_called()


def test_cloud_identity_never_comes_from_the_form(files, context, hook):
    for key, value in (("role_arn", "arn:aws:iam::999999999999:role/AttackerAdmin"), ("aws_conn_id", "aws_prod_admin"),
                       ("image_uri", "999.dkr.ecr/evil:latest"), ("output_path", "s3://attacker/out")):  # fmt: skip
        op = _operator(files, backend="sagemaker", backend_overrides={key: value})
        with pytest.raises(ForbiddenInputError, match=f"'{key}' may not come from the trigger form"):
            op.execute(context)


def test_training_data_outside_the_allowed_roots_is_not_hashed(
    files, context, hook, local, monkeypatch, tmp_path
):
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_ROOTS", str(tmp_path / "nowhere"))
    with pytest.raises(ForbiddenInputError, match="train_data: not read: .* outside the folders"):
        _operator(files).execute(context)
    local.submit.assert_not_called()


def test_bad_backend_config_fails_without_retry(files, context, hook):
    op = _operator(files, backend_config={"gpu": 1})
    with pytest.raises(DataInputError, match=r"unknown local key\(s\) \['gpu'\]"):
        op.execute(context)


class CloudWithoutItsSdk(TrainingBackend):
    """A cloud backend whose SDK (its extra) is not installed."""

    name = "sagemaker"
    extra = "amazon"
    requires = ("some_cloud_sdk_that_is_not_installed",)
    submit = poll = fetch_output = None  # type: ignore[assignment]


def test_missing_extra_is_named(files, context, hook, monkeypatch):
    monkeypatch.setitem(base.BACKENDS, "sagemaker", f"{__name__}.CloudWithoutItsSdk")
    with pytest.raises(MissingExtraError, match=r"pip install 'airflow-mlops\[amazon\]'") as err:
        _operator(files, backend="sagemaker").execute(context)
    assert err.value.extra == "amazon"
    assert "some_cloud_sdk_that_is_not_installed" in str(err.value)


def test_entrypoint_is_found_beside_the_dag_folder(files, context, hook, local, tmp_path):
    """A relative entrypoint resolves from the DAG file's folder's parent (``dags/`` next to ``include/``)."""
    local.submit.return_value = _handle("local", "failed")
    context["dag"] = mock.Mock(fileloc=str(tmp_path / "dags" / "pipeline.py"))
    with pytest.raises(TrainingJobFailed):
        _operator(files, entrypoint="code/train.py").execute(context)
    (spec,) = local.submit.call_args.args
    assert spec.entrypoint == str(files["entrypoint"])
