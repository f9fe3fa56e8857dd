"""SageMaker backend against a moto server on 127.0.0.1 (S3 and SageMaker in one server).

All AWS calls are real boto3/aiobotocore requests over HTTP through the Amazon provider's hooks
and trigger. moto's training jobs complete the moment they are created and run nothing, so the
far side is completed here the way SageMaker's scikit-learn image would do it: when a job is
created, a fake container unpacks ``sagemaker_submit_directory`` from S3, decodes the
hyper-parameters like the SageMaker training toolkit, downloads the channels, runs
``sagemaker_program`` in a subprocess with ``SM_CHANNEL_*``/``SM_MODEL_DIR`` and uploads
``model.tar.gz`` where SageMaker writes it (or marks the job Failed with the script's error).
moto has no StopTrainingJob; the fake adds it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from tests.helpers.aws import ACCOUNT, REGION, moto_server
from tests.helpers.fixtures import REPO

pytestmark = pytest.mark.integration

BUCKET = "mlops-train-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerTraining"
ENTRYPOINT = REPO / "include" / "training" / "train.py"
SAGEMAKER_HP = {
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_region",
    "sagemaker_job_name",
    "sagemaker_container_log_level",
}


class FakeSageMaker:
    """The far side: what the scikit-learn framework container does with a training job."""

    def __init__(self) -> None:
        self.run_containers = True
        self.stopped: list[str] = []
        self.container_runs: list[dict] = []
        self._lock = threading.Lock()

    @property
    def s3(self):
        from moto.s3.models import s3_backends

        return s3_backends[ACCOUNT]["aws"]

    @property
    def sagemaker(self):
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION]

    def job(self, name: str):
        return self.sagemaker.training_jobs[name]

    def _get(self, uri: str) -> bytes:
        bucket, _, key = uri[len("s3://") :].partition("/")
        return self.s3.get_object(bucket, key).value

    def _download_channel(self, uri: str, dest: Path) -> None:
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        dest.mkdir(parents=True)
        for key in list(self.s3.get_bucket(bucket).keys):
            if key.startswith(prefix):
                (dest / os.path.basename(key)).write_bytes(self.s3.get_object(bucket, key).value)

    def after_create(self, name: str) -> None:
        job = self.job(name)
        if not self.run_containers:
            job.training_job_status = "InProgress"
            job.secondary_status = "Training"
            return
        with self._lock, tempfile.TemporaryDirectory(prefix="fake-sm-") as tmp:
            root = Path(tmp)
            hp = {k: json.loads(v) for k, v in job.hyper_parameters.items()}
            code = root / "code"
            code.mkdir()
            with tarfile.open(
                fileobj=io.BytesIO(self._get(hp["sagemaker_submit_directory"])), mode="r:gz"
            ) as tar:
                tar.extractall(code, filter="data")
            env = {**os.environ, "SM_MODEL_DIR": str(root / "model"), "PYTHONHASHSEED": "0"}
            for channel in job.input_data_config:
                path = root / "input" / channel["ChannelName"]
                self._download_channel(channel["DataSource"]["S3DataSource"]["S3Uri"], path)
                env[f"SM_CHANNEL_{channel['ChannelName'].upper()}"] = str(path)
            (root / "model").mkdir()
            # The toolkit passes every non-sagemaker hyper-parameter as --key <json-decoded value>.
            args = [a for k, v in hp.items() if k not in SAGEMAKER_HP for a in (f"--{k}", str(v))]
            cmd = [sys.executable, hp["sagemaker_program"], *args]
            proc = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, timeout=300)
            self.container_runs.append(
                {
                    "cmd": cmd,
                    "files": sorted(os.listdir(code)),
                    "rc": proc.returncode,
                    "stderr": proc.stderr[-2000:],
                }
            )
            if proc.returncode != 0:
                job.training_job_status = "Failed"
                job.secondary_status = "Failed"
                job.failure_reason = f"AlgorithmError: {proc.stderr.strip().splitlines()[-1]}"
                return
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for item in sorted(os.listdir(root / "model")):
                    tar.add(root / "model" / item, arcname=item)
            artefact = job.model_artifacts["S3ModelArtifacts"]
            bucket, _, key = artefact[len("s3://") :].partition("/")
            self.s3.put_object(bucket, key, buffer.getvalue())


@pytest.fixture(scope="module")
def fake_sagemaker():
    from moto.core.responses import EmptyResult
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    fake = FakeSageMaker()
    original_create = SageMakerModelBackend.create_training_job

    def create_training_job(self, training_job_name, *args, **kwargs):
        job = original_create(self, training_job_name, *args, **kwargs)
        fake.after_create(training_job_name)
        return job

    def stop_training_job(self):
        name = self._get_param("TrainingJobName")
        fake.stopped.append(name)
        fake.job(name).training_job_status = "Stopped"
        return EmptyResult()

    with pytest.MonkeyPatch.context() as mp, moto_server(mp, REGION) as url:
        mp.setattr(SageMakerModelBackend, "create_training_job", create_training_job)
        mp.setattr(SageMakerResponse, "stop_training_job", stop_training_job, raising=False)
        import boto3

        s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        rows = ["f1,f2,color,label"] + [
            f"{i % 7},{(i * 3) % 5},{'rg'[i % 2]},{int(i % 7 > 3)}" for i in range(60)
        ]
        s3.put_object(Bucket=BUCKET, Key="data/train.csv", Body="\n".join(rows).encode())
        s3.put_object(
            Bucket=BUCKET, Key="data/validation.csv", Body="\n".join(rows[:1] + rows[1:31]).encode()
        )
        fake.url = url
        yield fake


def _backend(**config):
    from airflow_mlops.backends.base import get_backend

    return get_backend(
        "sagemaker",
        {"role_arn": ROLE, "output_path": f"s3://{BUCKET}/jobs", **config},
        logging.getLogger("test.sagemaker"),
    )


def _spec(job_name: str, entrypoint: Path = ENTRYPOINT, params: dict | None = None):
    from airflow_mlops.backends.base import TrainingJobSpec

    return TrainingJobSpec(
        entrypoint=str(entrypoint),
        train_data=f"s3://{BUCKET}/data/train.csv",
        validation_data=f"s3://{BUCKET}/data/validation.csv",
        params=params if params is not None else {"target": "label", "model": "logistic_regression"},
        job_name=job_name,
    )


TRAIN_DAG = """
import json
from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_mlops.operators.training import TrainModelOperator


class RecordingTrain(TrainModelOperator):
    # Observes the deferral only; everything else is the real operator.
    def defer(self, **kwargs):
        Path({marker!r}).write_text(json.dumps(kwargs["trigger"].serialize()))
        super().defer(**kwargs)


@dag(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def pipeline():
    RecordingTrain(
        task_id="train",
        entrypoint={entrypoint!r},
        train_data="s3://{bucket}/data/train.csv",
        validation_data="s3://{bucket}/data/validation.csv",
        registered_model_name={model!r},
        hyperparameters={params!r},
        backend="sagemaker",
        backend_config={{"role_arn": {role!r}, "output_path": "s3://{bucket}/jobs", "instance_type": "ml.m5.xlarge",
                        "use_spot": True, "max_runtime_seconds": 1800, "subnets": ["subnet-1"],
                        "security_group_ids": ["sg-1"], "tags": {{"team": "ml"}}}},
        poll_interval=1,
    )


pipeline()
"""


def test_train_on_sagemaker_defers_and_registers(
    fake_sagemaker, mlflow_server, dag_runner, model_name, tmp_path
):
    from airflow_mlops.core import tags

    marker = tmp_path / "deferred.json"
    params = {"target": "label", "model": "logistic_regression", "C": 0.5}
    result = dag_runner.run(
        textwrap.dedent(TRAIN_DAG).format(
            marker=str(marker),
            dag_id="sagemaker_train_ok",
            entrypoint=str(ENTRYPOINT),
            bucket=BUCKET,
            model=model_name,
            params=params,
            role=ROLE,
        )
    )
    assert result.state == "success", result.task_states

    # The task deferred to the Amazon provider's SageMakerTrigger (the wait held no worker slot).
    path, kwargs = json.loads(marker.read_text())
    assert path == "airflow.providers.amazon.aws.triggers.sagemaker.SageMakerTrigger"
    job_name = kwargs["job_name"]
    assert kwargs["job_type"] == "training" and kwargs["waiter_delay"] == 1

    # The CreateTrainingJob request, as SageMaker recorded it.
    job = fake_sagemaker.job(job_name)
    described = job.response_object
    assert described["AlgorithmSpecification"]["TrainingImage"] == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert described["RoleArn"] == ROLE
    assert described["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert described["ResourceConfig"]["InstanceCount"] == 1
    assert described["EnableManagedSpotTraining"] is True
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert described["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    assert described["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/jobs"
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]
    }
    assert channels == {
        "train": f"s3://{BUCKET}/data/train.csv",
        "validation": f"s3://{BUCKET}/data/validation.csv",
    }
    hp = described["HyperParameters"]
    assert json.loads(hp["sagemaker_program"]) == "train.py"
    assert (
        json.loads(hp["sagemaker_submit_directory"])
        == f"s3://{BUCKET}/jobs/{job_name}/source/sourcedir.tar.gz"
    )
    assert json.loads(json.loads(hp["params"])) == params
    assert {"Key": "team", "Value": "ml"} in job.tags

    # The fake container ran the shipped script with the params the toolkit decoded.
    run = fake_sagemaker.container_runs[-1]
    assert run["rc"] == 0, run["stderr"]
    assert "train.py" in run["files"] and "__pycache__" not in run["files"]
    assert run["cmd"][-2:] == ["--params", json.dumps(params, sort_keys=True)]

    # Completion resumed the task: the model the job wrote is registered with its lineage.
    out = result.xcom("train")
    assert out["backend"] == "sagemaker" and out["job_id"] == job_name
    assert (
        out["console_url"]
        == f"https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/{job_name}"
    )
    client = mlflow_server.client()
    version = client.get_model_version(model_name, out["model_version"])
    assert version.tags[tags.BACKEND] == "sagemaker"
    assert version.tags[tags.JOB_ID] == job_name
    assert version.tags[tags.JOB_CONSOLE_URL] == out["console_url"]
    assert version.tags[tags.TRAIN_DATA_URI] == f"s3://{BUCKET}/data/train.csv"
    artefact = fake_sagemaker._get(job.model_artifacts["S3ModelArtifacts"])
    with tarfile.open(fileobj=io.BytesIO(artefact)) as tar:
        metrics = json.load(tar.extractfile("metrics.json"))
        assert "model/MLmodel" in tar.getnames()
    assert out["metrics"] == pytest.approx(metrics)
    run_files = {f.path for f in client.list_artifacts(out["run_id"], "model")}
    assert "model/MLmodel" in run_files


def test_failed_job_fails_task_with_reason_and_registers_nothing(
    fake_sagemaker, mlflow_server, dag_runner, model_name, tmp_path
):
    # A real script that fails the way a training script does: the job ends Failed.
    code = tmp_path / "code"
    code.mkdir()
    (code / "broken.py").write_text("import sys\nsys.exit('TrainingInputError: column label missing')\n")
    result = dag_runner.run(
        textwrap.dedent(TRAIN_DAG).format(
            marker=str(tmp_path / "deferred.json"),
            dag_id="sagemaker_train_fails",
            entrypoint=str(code / "broken.py"),
            bucket=BUCKET,
            model=model_name,
            params={},
            role=ROLE,
        )
    )
    assert result.state == "failed"
    assert result.task_states["train"] == "failed"
    job_name = json.loads((tmp_path / "deferred.json").read_text())[1]["job_name"]
    assert fake_sagemaker.job(job_name).training_job_status == "Failed"
    assert result.xcom("train") is None
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        mlflow_server.client().get_registered_model(model_name)

    # What the task raised carries the job's failure reason.
    from airflow_mlops.backends.base import JobHandle
    from airflow_mlops.exceptions import TrainingJobFailed

    backend = _backend()
    handle = backend.handle_event(
        JobHandle(backend="sagemaker", job_id=job_name, details={"region": REGION}),
        {"status": "failed", "message": "Error while waiting for training job"},
    )
    assert handle.status == "failed"
    assert "column label missing" in handle.message
    with pytest.raises(TrainingJobFailed, match="column label missing"):
        from airflow_mlops.operators.training import TrainModelOperator

        TrainModelOperator(
            task_id="t",
            entrypoint="x.py",
            train_data="s3://b/k",
            registered_model_name="m",
            backend="sagemaker",
        )._fetch_and_register({}, backend, handle, {})


def test_rerun_reattaches_to_live_job_and_on_kill_finds_and_stops_it(fake_sagemaker):
    from airflow_mlops.operators.training import TrainModelOperator

    fake_sagemaker.run_containers = False  # jobs stay InProgress, like a real one mid-training
    try:
        backend = _backend()
        first = backend.submit(_spec("reattach-job"))
        assert first.status == "submitted" and first.job_id == "reattach-job"
        assert backend.poll(first).status == "running"
        # A worker crash and a new try: same job name, the running job is reattached, not duplicated.
        second = _backend().submit(_spec("reattach-job"))
        assert second.job_id == "reattach-job" and second.status == "running"
        assert sorted(n for n in fake_sagemaker.sagemaker.training_jobs if n.startswith("reattach-job")) == [
            "reattach-job"
        ]

        op = TrainModelOperator(
            task_id="train",
            entrypoint=str(ENTRYPOINT),
            train_data="s3://b/k",
            registered_model_name="m",
            backend="sagemaker",
        )
        # Killed inside submit(), before the handle came back: on_kill finds the job by its name.
        op._backend, op._spec = backend, _spec("reattach-job")
        op.on_kill()
        assert fake_sagemaker.stopped == ["reattach-job"]
        stopped = backend.poll(second)
        assert stopped.status == "cancelled" and stopped.done
        assert backend.find_job(_spec("reattach-job")) is None  # a stopped job is not live

        # A job that ended Failed/Stopped keeps its name forever: a re-run starts the next one.
        third = _backend().submit(_spec("reattach-job"))
        assert third.job_id == "reattach-job-r2" and third.status == "submitted"
    finally:
        fake_sagemaker.run_containers = True


def test_non_s3_data_is_a_clear_error(fake_sagemaker):
    from airflow_mlops.backends.base import TrainingJobSpec
    from airflow_mlops.exceptions import DataInputError

    spec = TrainingJobSpec(entrypoint=str(ENTRYPOINT), train_data="/data/train.parquet", job_name="bad-data")
    with pytest.raises(DataInputError, match=r"train_data must be an s3:// URI .*'/data/train.parquet'"):
        _backend().submit(spec)
    assert "bad-data" not in fake_sagemaker.sagemaker.training_jobs
