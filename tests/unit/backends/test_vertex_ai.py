"""Vertex AI backend: the real ``aiplatform_v1.CustomJob`` is built and checked field by field;
only the network is faked (the provider hook's JobServiceClient, the async client the trigger
uses, and Cloud Storage object calls)."""

from __future__ import annotations

import io
import json
import logging
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import pytest

from airflow_mlops.backends.base import JobHandle, TrainingJobSpec, get_backend
from airflow_mlops.exceptions import DataInputError, MissingExtraError, TrainingJobFailed
from tests.helpers.gcp import fake_google_auth

PROJECT = "mlops-project"
REGION = "europe-west4"
BUCKET = "mlops-staging"
LOG = logging.getLogger("test.vertex")


@pytest.fixture
def entrypoint(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    (code / "__pycache__").mkdir(parents=True)
    (code / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    (code / "helpers").mkdir()
    (code / "helpers" / "features.py").write_text("COLUMNS = []\n")
    (code / "requirements.txt").write_text("# pinned\nmlflow==3.1.0\nscikit-learn>=1.3\n")
    script = code / "train.py"
    script.write_text("print('training')\n")
    return script


def _spec(entrypoint: Path, **kw) -> TrainingJobSpec:
    values = {
        "entrypoint": str(entrypoint),
        "train_data": f"gs://{BUCKET}/data/train.parquet",
        "validation_data": f"gs://{BUCKET}/data/validation.parquet",
        "params": {"target": "churned", "n_estimators": 50},
        "job_name": "mlops-train-churn-abc123",
    }
    values.update(kw)
    return TrainingJobSpec(**values)


def _backend(**config):
    return get_backend(
        "vertex_ai",
        {"project_id": PROJECT, "region": REGION, "staging_bucket": f"gs://{BUCKET}/runs", **config},
        LOG,
    )


class FakeVertex:
    """The far side: JobService (create/get/list/cancel) and Cloud Storage objects in memory."""

    def __init__(self) -> None:
        from google.cloud.aiplatform_v1 import JobServiceClient

        self.jobs: dict[str, object] = {}
        self.objects: dict[tuple[str, str], bytes] = {}
        self.client = mock.create_autospec(JobServiceClient, instance=True)
        self.client.create_custom_job.side_effect = self._create
        self.client.get_custom_job.side_effect = lambda request, **_: self.jobs[request["name"]]
        self.client.list_custom_jobs.side_effect = self._list
        self.client.cancel_custom_job.side_effect = self._cancel

    def _create(self, request, **_):
        from google.cloud.aiplatform_v1.types import CustomJob, JobState

        job = CustomJob.deserialize(CustomJob.serialize(request["custom_job"]))
        job.name = f"{request['parent']}/customJobs/{1000 + len(self.jobs)}"
        job.state = JobState.JOB_STATE_PENDING
        job.create_time = datetime(2024, 1, 1, 0, len(self.jobs), tzinfo=timezone.utc)
        self.jobs[job.name] = job
        return job

    def _list(self, request, **_):
        wanted = request["filter"].split("=", 1)[1].strip('"')
        return [job for job in self.jobs.values() if job.display_name == wanted]

    def _cancel(self, request, **_):
        from google.cloud.aiplatform_v1.types import JobState

        self.jobs[request["name"]].state = JobState.JOB_STATE_CANCELLED

    def set_state(self, job_id: str, state: str, error: str | None = None) -> None:
        from google.cloud.aiplatform_v1.types import JobState

        job = next(j for j in self.jobs.values() if j.name.endswith(f"/{job_id}"))
        job.state = getattr(JobState, state)
        if error:
            job.error.message = error

    # GCSHook methods, same signatures
    def upload(self, bucket_name, object_name, filename=None, data=None, mime_type=None, **_):
        self.objects[(bucket_name, object_name)] = data

    def list(self, bucket_name, versions=None, max_results=None, prefix=None, **_):
        return [
            name for (bucket, name) in self.objects if bucket == bucket_name and name.startswith(prefix or "")
        ]

    def download(self, bucket_name, object_name, filename=None, **_):
        Path(filename).write_bytes(self.objects[(bucket_name, object_name)])
        return filename


@pytest.fixture
def fake(monkeypatch):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from airflow.providers.google.cloud.hooks.vertex_ai.custom_job import CustomJobHook

    fake = FakeVertex()
    fake_google_auth(monkeypatch, PROJECT)
    monkeypatch.setattr(CustomJobHook, "get_job_service_client", lambda self, region=None: fake.client)
    for name in ("upload", "list", "download"):
        monkeypatch.setattr(GCSHook, name, lambda self, *a, _n=name, **kw: getattr(fake, _n)(*a, **kw))
    return fake


def test_custom_job_proto_field_by_field(entrypoint):
    from google.cloud.aiplatform_v1.types import AcceleratorType, CustomJob

    backend = _backend(
        machine_type="n1-highmem-8",
        replica_count=3,
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=2,
        boot_disk_size_gb=200,
        service_account="trainer@mlops-project.iam.gserviceaccount.com",
        network="projects/123/global/networks/vpc",
        labels={"team": "ml"},
        environment={"LOG_LEVEL": "debug"},
        timeout_seconds=7200,
    )
    job = backend.build_custom_job(_spec(entrypoint), f"gs://{BUCKET}/runs/pkg.tar.gz")
    assert isinstance(job, CustomJob)
    assert job.display_name == "mlops-train-churn-abc123"
    assert dict(job.labels) == {"airflow-mlops": "train", "team": "ml"}
    spec = job.job_spec
    assert spec.base_output_directory.output_uri_prefix == f"gs://{BUCKET}/runs/mlops-train-churn-abc123"
    assert spec.service_account == "trainer@mlops-project.iam.gserviceaccount.com"
    assert spec.network == "projects/123/global/networks/vpc"
    assert spec.scheduling.timeout.total_seconds() == 7200
    # one chief + the other replicas in a second pool, same machines
    assert [p.replica_count for p in spec.worker_pool_specs] == [1, 2]
    for pool in spec.worker_pool_specs:
        assert pool.machine_spec.machine_type == "n1-highmem-8"
        assert pool.machine_spec.accelerator_type == AcceleratorType.NVIDIA_TESLA_T4
        assert pool.machine_spec.accelerator_count == 2
        assert pool.disk_spec.boot_disk_size_gb == 200
        package = pool.python_package_spec
        assert package.executor_image_uri == "europe-docker.pkg.dev/vertex-ai/training/sklearn-cpu.1-0:latest"
        assert list(package.package_uris) == [f"gs://{BUCKET}/runs/pkg.tar.gz"]
        assert package.python_module == "mlops_trainer.train"
        assert [(e.name, e.value) for e in package.env] == [("LOG_LEVEL", "debug")]
        assert list(package.args) == [
            "--train",
            f"/gcs/{BUCKET}/data/train.parquet",
            "--validation",
            f"/gcs/{BUCKET}/data/validation.parquet",
            "--params",
            json.dumps({"n_estimators": 50, "target": "churned"}),
            # the FUSE path of AIP_MODEL_DIR (= <base_output_directory>/model/)
            "--output-dir",
            f"/gcs/{BUCKET}/runs/mlops-train-churn-abc123/model",
        ]
        assert not pool.container_spec.image_uri


def test_user_container_gets_the_same_arguments(entrypoint):
    backend = _backend(
        container_image_uri="us-docker.pkg.dev/p/r/trainer:1", command=["python", "/app/train.py"]
    )
    job = backend.build_custom_job(_spec(entrypoint, validation_data=None), None)
    (pool,) = job.job_spec.worker_pool_specs
    assert pool.container_spec.image_uri == "us-docker.pkg.dev/p/r/trainer:1"
    assert list(pool.container_spec.command) == ["python", "/app/train.py"]
    assert list(pool.container_spec.args)[:2] == ["--train", f"/gcs/{BUCKET}/data/train.parquet"]
    assert "--validation" not in pool.container_spec.args
    assert not pool.python_package_spec.executor_image_uri


def test_submit_ships_package_creates_job_and_reattaches(fake, entrypoint):
    backend = _backend()
    handle = backend.submit(_spec(entrypoint))
    assert handle.status == "running" and handle.job_id == "1000"  # PENDING
    assert handle.console_url == (
        f"https://console.cloud.google.com/ai/platform/locations/{REGION}/training/1000?project={PROJECT}"
    )
    assert handle.details["model_dir"] == f"gs://{BUCKET}/runs/mlops-train-churn-abc123/model/"
    request = fake.client.create_custom_job.call_args.kwargs["request"]
    assert request["parent"] == f"projects/{PROJECT}/locations/{REGION}"

    # the source distribution: setup.py with the folder's requirements, the folder as a package
    key = "runs/mlops-train-churn-abc123/code/mlops_trainer-0.0.0.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(fake.objects[(BUCKET, key)])) as tar:
        names = set(tar.getnames())
        setup_py = tar.extractfile("mlops_trainer-0.0.0/setup.py").read().decode()
    assert {
        "mlops_trainer-0.0.0/mlops_trainer/train.py",
        "mlops_trainer-0.0.0/mlops_trainer/__init__.py",
        "mlops_trainer-0.0.0/mlops_trainer/helpers/features.py",
    } <= names
    assert not any("__pycache__" in n for n in names)
    assert "install_requires=['mlflow==3.1.0', 'scikit-learn>=1.3']" in setup_py
    compile(setup_py, "setup.py", "exec")

    # a new try after a worker crash finds the running job by display name
    fake.set_state("1000", "JOB_STATE_RUNNING")
    again = get_backend("vertex_ai", {"region": REGION, "staging_bucket": f"gs://{BUCKET}/runs"}, LOG).submit(
        _spec(entrypoint)
    )  # (the project comes from the connection's credentials this time)
    assert again.details["project_id"] == PROJECT
    assert again.job_id == "1000" and again.status == "running"
    assert fake.client.create_custom_job.call_count == 1

    # a failed job is not reattached to: a re-run trains afresh
    fake.set_state(
        "1000", "JOB_STATE_FAILED", error="The replica workerpool0-0 exited with a non-zero status of 1"
    )
    fresh = _backend().submit(_spec(entrypoint))
    assert fresh.job_id == "1001" and fake.client.create_custom_job.call_count == 2


def test_poll_events_cancel(fake, entrypoint):
    backend = _backend()
    handle = backend.submit(_spec(entrypoint))
    assert backend.poll(handle).status == "running"  # PENDING

    # the trigger fired but the job is still running (timeout): never a success
    fake.set_state(handle.job_id, "JOB_STATE_RUNNING")
    waited = backend.handle_event(handle, {"status": "timeout", "message": "still RUNNING after 10s"})
    assert waited.status == "failed" and "still RUNNING after 10s" in waited.message

    fake.set_state(handle.job_id, "JOB_STATE_FAILED", error="OOM in workerpool0-0")
    failed = backend.handle_event(handle, {"status": "failed", "message": "ended"})
    assert failed.status == "failed" and "OOM in workerpool0-0" in failed.message

    errored = backend.handle_event(handle, {"status": "error", "message": "permission denied"})
    assert errored.status == "failed" and errored.message == "permission denied"

    fake.set_state(handle.job_id, "JOB_STATE_SUCCEEDED")
    assert backend.handle_event(handle, {"status": "success"}).status == "succeeded"

    fake.set_state(handle.job_id, "JOB_STATE_RUNNING")
    backend.cancel(handle)
    fake.client.cancel_custom_job.assert_called_once()
    assert fake.client.cancel_custom_job.call_args.kwargs["request"] == {
        "name": f"projects/{PROJECT}/locations/{REGION}/customJobs/{handle.job_id}"
    }
    assert backend.poll(handle).status == "cancelled"


def test_fetch_output_brings_back_aip_model_dir(fake, tmp_path):
    backend = _backend()
    base = "runs/job/model/"
    handle = JobHandle(
        backend="vertex_ai", job_id="7", details={"project_id": PROJECT, "model_dir": f"gs://{BUCKET}/{base}"}
    )
    fake.objects[(BUCKET, base + "model/MLmodel")] = b"flavors: {}\n"
    fake.objects[(BUCKET, base + "model/model.pkl")] = b"\x80\x04"
    fake.objects[(BUCKET, base + "metrics.json")] = b'{"accuracy": 0.9}'
    out = Path(backend.fetch_output(handle, str(tmp_path / "dl")))
    assert (out / "model" / "MLmodel").read_text() == "flavors: {}\n"
    assert json.loads((out / "metrics.json").read_text()) == {"accuracy": 0.9}

    del fake.objects[(BUCKET, base + "metrics.json")]
    with pytest.raises(TrainingJobFailed, match="has no metrics.json"):
        backend.fetch_output(handle, str(tmp_path / "dl2"))


def test_bad_input_is_a_clear_error(entrypoint):
    with pytest.raises(DataInputError, match=r"train_data must be a gs:// URI .*'s3://b/train.csv'"):
        _backend().validate(_spec(entrypoint, train_data="s3://b/train.csv"))
    with pytest.raises(DataInputError, match=r"validation_data must be a gs:// URI"):
        _backend().validate(_spec(entrypoint, validation_data="/local/validation.csv"))
    with pytest.raises(DataInputError, match="is not a file"):
        _backend().validate(_spec(Path("/nope/train.py")))
    # a user container holds its own code: the entrypoint need not exist here
    _backend(container_image_uri="us-docker.pkg.dev/p/r/t:1").validate(_spec(Path("/app/t.py")))
    with pytest.raises(ValueError, match="staging_bucket"):
        get_backend("vertex_ai", {"project_id": PROJECT}, LOG)
    with pytest.raises(ValueError, match=r"unknown Vertex AI key\(s\) \['machine'\]"):
        _backend(machine="n1")
    with pytest.raises(ValueError, match="not both"):
        _backend(executor_image_uri="a", container_image_uri="b")


def test_missing_google_extra_names_it(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("airflow.providers.google")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "airflow.providers.google", None)
    with pytest.raises(MissingExtraError, match=r"airflow-mlops\[google\]"):
        _backend()


def test_trigger_from_backend(fake, entrypoint):
    from airflow_mlops.triggers.vertex_ai import VertexAICustomJobTrigger

    backend = _backend(timeout_seconds=600, impersonation_chain="sa@x")
    handle = backend.submit(_spec(entrypoint))
    trigger = backend.trigger(handle, poll_interval=15)
    assert isinstance(trigger, VertexAICustomJobTrigger)
    assert trigger.serialize()[1] == {
        "conn_id": "google_cloud_default",
        "project_id": PROJECT,
        "location": REGION,
        "job_id": handle.job_id,
        "poll_interval": 15.0,
        "timeout": 4200.0,
        "impersonation_chain": "sa@x",
    }


def test_find_job_after_a_kill_mid_submit(fake, entrypoint):
    """on_kill's lookup: the live job of this name, never a failed one or another name's."""
    assert _backend().find_job(_spec(entrypoint)) is None
    handle = _backend().submit(_spec(entrypoint))
    found = _backend().find_job(_spec(entrypoint))
    assert (found.job_id, found.status) == (handle.job_id, "running")
    assert _backend().find_job(_spec(entrypoint, job_name="other-task")) is None
    fake.set_state(handle.job_id, "JOB_STATE_FAILED")
    assert _backend().find_job(_spec(entrypoint)) is None
