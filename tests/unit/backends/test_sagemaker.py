"""SageMaker backend logic that needs no AWS (the moto end-to-end is in tests/integration/backends),
and the import behaviour of the cloud modules without their extras."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from airflow_mlops.backends.base import JobHandle, TrainingJobSpec, get_backend
from airflow_mlops.backends.sagemaker import pack_source_dir, sklearn_image_uri

LOG = logging.getLogger("test.sagemaker")
CONFIG = {"role_arn": "arn:aws:iam::1:role/r", "output_path": "s3://bucket/jobs", "region_name": "eu-west-1"}


@pytest.mark.parametrize(
    ("region", "uri"),
    [
        ("us-east-1", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"),
        (
            "eu-central-1",
            "492215442770.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        ),
        (
            "cn-north-1",
            "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.2-1-cpu-py3",
        ),
    ],
)
def test_default_image_per_region(region, uri):
    assert sklearn_image_uri(region) == uri


def test_unknown_region_asks_for_image_uri():
    with pytest.raises(ValueError, match="set backend_config\\['image_uri'\\]"):
        sklearn_image_uri("mars-north-1")


def test_source_tarball_is_reproducible_and_clean(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.py").write_text("X = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "requirements.txt").write_text("mlflow\n")
    first = pack_source_dir(str(tmp_path))
    os.utime(tmp_path / "train.py", (1_000_000, 1_000_000))  # a new mtime changes nothing
    assert pack_source_dir(str(tmp_path)) == first
    assert first[4:8] == bytes(4)  # nor does the clock: the gzip header's own mtime is zero
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert tar.getnames() == ["requirements.txt", "train.py", "pkg/util.py"]


def test_training_job_request_with_overrides(tmp_path):
    backend = get_backend(
        "sagemaker",
        {
            **CONFIG,
            "image_uri": "1.dkr.ecr.eu-west-1.amazonaws.com/own:1",
            "instance_count": 2,
            "environment": {"A": 1},
            "volume_kms_key_id": "kms-1",
            "output_kms_key_id": "kms-2",
        },
        LOG,
    )
    spec = TrainingJobSpec(
        entrypoint=str(tmp_path / "train.py"),
        train_data="s3://bucket/train/",
        params={"a": [1]},
        job_name="j",
    )
    config = backend.training_job_config(spec, "j", "eu-west-1", "s3://bucket/jobs/j/source/sourcedir.tar.gz")
    assert config["AlgorithmSpecification"] == {
        "TrainingImage": "1.dkr.ecr.eu-west-1.amazonaws.com/own:1",
        "TrainingInputMode": "File",
    }
    assert [c["ChannelName"] for c in config["InputDataConfig"]] == ["train"]
    assert config["ResourceConfig"] == {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
        "VolumeKmsKeyId": "kms-1",
    }
    assert config["OutputDataConfig"] == {"S3OutputPath": "s3://bucket/jobs", "KmsKeyId": "kms-2"}
    assert config["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert config["EnableManagedSpotTraining"] is False and "VpcConfig" not in config
    assert config["Environment"] == {"A": "1"}
    hp = config["HyperParameters"]
    assert json.loads(hp["sagemaker_region"]) == "eu-west-1"
    assert json.loads(json.loads(hp["params"])) == {"a": [1]}


def test_too_long_params_are_refused(tmp_path):
    backend = get_backend("sagemaker", CONFIG, LOG)
    spec = TrainingJobSpec(
        entrypoint="train.py", train_data="s3://b/t", params={"x": "y" * 3000}, job_name="j"
    )
    with pytest.raises(ValueError, match="at most 2500"):
        backend.training_job_config(spec, "j", "eu-west-1", "s3://b/c")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"output_path": "s3://b/o"}, r"backend_config\['role_arn'\] is required"),
        ({**CONFIG, "output_path": "/local/out"}, r"output_path'\] must be an s3:// URI"),
        (
            {**CONFIG, "use_spot": True, "max_runtime_seconds": 100, "max_wait_seconds": 50},
            "max_wait_seconds",
        ),
        (
            {**CONFIG, "instance_typ": "ml.c5.xlarge"},
            r"unknown SageMaker key\(s\) \['instance_typ'\] \(did you mean 'instance_typ' -> 'instance_type'\?\)",
        ),
        ({**CONFIG, "subnets": ["subnet-1"]}, "a VPC needs both 'subnets' and 'security_group_ids'"),
    ],
)
def test_bad_config_names_the_setting(config, message):
    with pytest.raises(Exception, match=message):
        get_backend("sagemaker", config, LOG)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("success", "succeeded"),
        ("timeout", "failed"),
        ("error", "failed"),
        ("stopped", "cancelled"),
        ("weird", "failed"),
        (None, "failed"),
    ],
)
def test_default_event_mapping_is_never_a_false_success(status, expected):
    from airflow_mlops.backends.base import TrainingBackend

    class Minimal(TrainingBackend):
        name = "minimal"
        submit = poll = fetch_output = None

    handle = Minimal({}, LOG).handle_event(
        JobHandle(backend="minimal", job_id="j"), {"status": status, "message": "m"}
    )
    assert (handle.status, handle.message) == (expected, "m")


PROBE = textwrap.dedent(
    """
    import importlib, json, logging, sys
    # What the cloud backends import; the providers' get_provider_info stays (Airflow reads it at start-up
    # for every installed provider, and a missing extra means no entry point at all).
    BLOCKED = ("airflow.providers.amazon.aws", "airflow.providers.google.cloud", "airflow.providers.google.common",
               "azure.ai.ml", "azure.identity",
               "boto3", "botocore", "aiobotocore", "google.cloud.aiplatform", "google.cloud.aiplatform_v1")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED or name.startswith(tuple(b + "." for b in BLOCKED)):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Block())
    for name in [m for m in sys.modules if m.startswith(BLOCKED)]:
        del sys.modules[name]
    modules = ["airflow_mlops", "airflow_mlops.backends.sagemaker", "airflow_mlops.backends.vertex_ai",
               "airflow_mlops.backends.azure_ml", "airflow_mlops.hooks.azure_ml", "airflow_mlops.triggers.azure_ml",
               "airflow_mlops.triggers.vertex_ai"]
    for module in modules:
        importlib.import_module(module)
    from airflow_mlops.backends.base import get_backend
    from airflow_mlops.exceptions import MissingExtraError
    errors = {}
    for name, config in [("sagemaker", {"role_arn": "r", "output_path": "s3://b/o"}),
                         ("vertex_ai", {"staging_bucket": "gs://b"}), ("azure_ml", {})]:
        try:
            get_backend(name, config, logging.getLogger("probe"))
        except MissingExtraError as err:
            errors[name] = str(err)
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "numpy", "mlflow", "sklearn", "boto3")
                   or m.startswith(("google.cloud.aiplatform", "azure.ai.ml")))
    print(json.dumps({"errors": errors, "heavy": heavy}))
    """
)


def test_modules_import_and_backends_name_their_extra_without_cloud_sdks():
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=repo, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert set(result["errors"]) == {"sagemaker", "vertex_ai", "azure_ml"}
    assert "pip install 'airflow-mlops[amazon]'" in result["errors"]["sagemaker"]
    assert "pip install 'airflow-mlops[google]'" in result["errors"]["vertex_ai"]
    assert "pip install 'airflow-mlops[azure]'" in result["errors"]["azure_ml"]
