"""Train on Amazon SageMaker (extra ``amazon``).

The entrypoint's folder is packed into ``sourcedir.tar.gz`` and uploaded to S3; a training job in
*script mode* runs it on the SageMaker scikit-learn framework image (the image's training toolkit
unpacks ``sagemaker_submit_directory``, installs a ``requirements.txt`` found there and runs
``sagemaker_program``). Data URIs become the ``train``/``validation`` channels
(``SM_CHANNEL_TRAIN``/``SM_CHANNEL_VALIDATION``), params arrive as ``--params '<json>'`` and the
script writes to ``SM_MODEL_DIR``, which SageMaker uploads as
``<output_path>/<job>/output/model.tar.gz``. The Amazon provider's ``SageMakerHook`` talks to the
API and its ``SageMakerTrigger`` waits in the triggerer. See docs/backends/sagemaker.md.
"""

from __future__ import annotations

import json
import math
import os
import tarfile
import tempfile
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.backends.base import (
    JobHandle,
    TrainingBackend,
    TrainingJobSpec,
    job_name_for,
    require_entrypoint,
    require_output,
    source_files,
    tar_gz,
)
from airflow_mlops.exceptions import DataInputError, MlopsError, TrainingJobFailed

if TYPE_CHECKING:
    import logging

    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.triggers.base import BaseTrigger

# Accounts that publish the SageMaker scikit-learn framework images, per region (the SageMaker
# Python SDK's image_uri_config/sklearn.json, identical for every framework version).
SKLEARN_IMAGE_ACCOUNTS: dict[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
DEFAULT_FRAMEWORK_VERSION = "1.2-1"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_MAX_RUNTIME = 24 * 3600
# SageMaker rejects a hyper-parameter value longer than this.
MAX_HYPERPARAMETER_LENGTH = 2500
# Training job names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
MAX_JOB_NAME = 63

# TrainingJobStatus of an ended job -> JobHandle status (InProgress and Stopping: still running).
# The Amazon provider's SageMakerTrigger has its own words for the same; see handle_event.
_STATUS = {"Completed": "succeeded", "Failed": "failed", "Stopped": "cancelled"}

_CONFIG_KEYS = frozenset(
    {
        "aws_conn_id",
        "region_name",
        "role_arn",
        "output_path",
        "code_path",
        "image_uri",
        "framework_version",
        "instance_type",
        "instance_count",
        "volume_size_gb",
        "max_runtime_seconds",
        "use_spot",
        "max_wait_seconds",
        "checkpoint_s3_uri",
        "subnets",
        "security_group_ids",
        "environment",
        "tags",
        "volume_kms_key_id",
        "output_kms_key_id",
    }
)


def sklearn_image_uri(region: str, framework_version: str = DEFAULT_FRAMEWORK_VERSION) -> str:
    """The SageMaker scikit-learn framework image for ``region``:
    ``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/sagemaker-scikit-learn:<version>-cpu-py3``."""
    account = SKLEARN_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(
            f"backend_config: no SageMaker scikit-learn image is known for region {region!r}; "
            "set backend_config['image_uri'] to the image to train with"
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/sagemaker-scikit-learn:{framework_version}-cpu-py3"


def console_url(region: str, job_name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}"


def pack_source_dir(source_dir: str) -> bytes:
    """``sourcedir.tar.gz`` of a folder: its files at the archive root, caches left out,
    reproducible (the same code gives the same bytes)."""
    return tar_gz(source_files(source_dir))


def _split_s3(uri: str, what: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise DataInputError(
            f"{what} must be an s3:// URI for the SageMaker backend (the job reads its channels "
            f"from S3), got {uri!r}; upload the data to S3 first"
        )
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class SageMakerBackend(TrainingBackend):
    """Runs the training entrypoint as a SageMaker training job in script mode.

    ``backend_config`` keys (see docs/backends/sagemaker.md): ``role_arn`` and ``output_path``
    (required); ``aws_conn_id`` (``aws_default``), ``region_name``, ``image_uri`` (default: the
    scikit-learn framework image of the region, version ``framework_version``), ``code_path``,
    ``instance_type``, ``instance_count``, ``volume_size_gb``, ``max_runtime_seconds``,
    ``use_spot``, ``max_wait_seconds``, ``checkpoint_s3_uri``, ``subnets``, ``security_group_ids``,
    ``environment``, ``tags``, ``volume_kms_key_id``, ``output_kms_key_id``.
    """

    name = "sagemaker"
    title = "SageMaker"
    job_noun = "SageMaker training job"
    extra = "amazon"
    requires = ("airflow.providers.amazon.aws.hooks.sagemaker",)
    config_keys = _CONFIG_KEYS
    form_keys = {
        "instance_type": {
            "type": "string",
            "pattern": r"^ml\.[a-z0-9]+\.[a-z0-9]+$",
            "description": f"training instance type (default {DEFAULT_INSTANCE_TYPE})",
        },
        "instance_count": {"type": "integer", "minimum": 1, "description": "number of instances"},
        "volume_size_gb": {"type": "integer", "minimum": 1, "description": "disk per instance, GB"},
        "max_runtime_seconds": {"type": "integer", "minimum": 1, "description": "time limit of the job"},
        "use_spot": {"type": "boolean", "description": "managed spot training"},
        "max_wait_seconds": {
            "type": "integer",
            "minimum": 1,
            "description": "spot: longest wait for capacity",
        },
    }

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger) -> None:
        super().__init__(config, log)
        for key in ("role_arn", "output_path"):
            if not self.config.get(key):
                raise ValueError(f"backend_config[{key!r}] is required for the SageMaker backend")
        _split_s3(self.config["output_path"], "backend_config['output_path']")
        if self.config.get("code_path"):
            _split_s3(self.config["code_path"], "backend_config['code_path']")
        if int(self.config.get("instance_count", 1)) < 1:
            raise ValueError("backend_config['instance_count'] must be at least 1")
        if bool(self.config.get("subnets")) != bool(self.config.get("security_group_ids")):
            raise ValueError("backend_config: a VPC needs both 'subnets' and 'security_group_ids'")
        self.aws_conn_id: str | None = self.config.get("aws_conn_id", "aws_default")
        self.max_runtime = int(self.config.get("max_runtime_seconds", DEFAULT_MAX_RUNTIME))
        self.use_spot = bool(self.config.get("use_spot", False))
        self.max_wait = (
            int(self.config.get("max_wait_seconds", 2 * self.max_runtime)) if self.use_spot else None
        )
        if self.max_wait is not None and self.max_wait < self.max_runtime:
            raise ValueError(
                "backend_config['max_wait_seconds'] must be >= max_runtime_seconds for spot training"
            )

    @cached_property
    def hook(self) -> SageMakerHook:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        return SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.config.get("region_name"))

    @cached_property
    def region(self) -> str:
        region = self.config.get("region_name") or self.hook.region_name
        if not region:
            raise ValueError(
                f"no AWS region: set backend_config['region_name'] or region_name in the extra of "
                f"connection {self.aws_conn_id!r}"
            )
        return region

    # ------------------------------------------------------------------ interface

    def validate(self, spec: TrainingJobSpec) -> None:
        require_entrypoint(spec)
        _split_s3(spec.train_data, "train_data")
        if spec.validation_data:
            _split_s3(spec.validation_data, "validation_data")

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        self.validate(spec)
        region = self.region  # no region is a configuration error: say so before any call
        job_name, existing = self._resolve_name(spec)
        if existing is not None:
            self.log.info(
                "SageMaker training job %s already exists (%s): reattaching instead of starting a second one",
                job_name,
                existing["TrainingJobStatus"],
            )
            return self._handle_from(existing)

        config = self.training_job_config(spec, job_name, region, code_uri=self._upload_code(spec, job_name))
        self.log.info(
            "Starting SageMaker training job %s: image %s, %s x %s%s, output %s",
            job_name,
            config["AlgorithmSpecification"]["TrainingImage"],
            config["ResourceConfig"]["InstanceCount"],
            config["ResourceConfig"]["InstanceType"],
            " (managed spot)" if self.use_spot else "",
            config["OutputDataConfig"]["S3OutputPath"],
        )
        response = self.hook.create_training_job(config, wait_for_completion=False, print_log=False)
        details = {
            "arn": response.get("TrainingJobArn"),
            "region": region,
            "model_artifacts": self._model_artifacts_uri(job_name),
        }
        return self.job_handle(
            job_name, "InProgress", "submitted", console_url=console_url(region, job_name), details=details
        )

    def find_job(self, spec: TrainingJobSpec) -> JobHandle | None:
        _, existing = self._resolve_name(spec)
        return None if existing is None else self._handle_from(existing)

    def training_job_config(
        self, spec: TrainingJobSpec, job_name: str, region: str, code_uri: str
    ) -> dict[str, Any]:
        """The CreateTrainingJob request for ``spec`` (script mode on the framework image)."""
        cfg = self.config
        version = cfg.get("framework_version", DEFAULT_FRAMEWORK_VERSION)
        image = cfg.get("image_uri") or sklearn_image_uri(region, version)
        params_json = json.dumps(spec.params, sort_keys=True)
        # Script mode JSON-decodes every hyper-parameter once before passing it as --key value:
        # encode each value once, and the params (a JSON string on the command line) twice.
        hyperparameters = {
            "sagemaker_program": json.dumps(os.path.basename(spec.entrypoint)),
            "sagemaker_submit_directory": json.dumps(code_uri),
            "sagemaker_region": json.dumps(region),
            "sagemaker_job_name": json.dumps(job_name),
            "sagemaker_container_log_level": "20",
            "params": json.dumps(params_json),
        }
        if len(hyperparameters["params"]) > MAX_HYPERPARAMETER_LENGTH:
            raise ValueError(
                f"params are {len(hyperparameters['params'])} characters as a SageMaker hyper-parameter; "
                f"SageMaker accepts at most {MAX_HYPERPARAMETER_LENGTH}"
            )
        channels = [("train", spec.train_data)]
        if spec.validation_data:
            channels.append(("validation", spec.validation_data))
        config: dict[str, Any] = {
            "TrainingJobName": job_name,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "RoleArn": cfg["role_arn"],
            "HyperParameters": hyperparameters,
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": uri,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
                for channel, uri in channels
            ],
            "OutputDataConfig": {"S3OutputPath": cfg["output_path"].rstrip("/")},
            "ResourceConfig": {
                "InstanceType": cfg.get("instance_type", DEFAULT_INSTANCE_TYPE),
                "InstanceCount": int(cfg.get("instance_count", 1)),
                "VolumeSizeInGB": int(cfg.get("volume_size_gb", 30)),
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_runtime},
            "EnableManagedSpotTraining": self.use_spot,
            "Tags": [
                {"Key": str(k), "Value": str(v)}
                for k, v in {"airflow-mlops": "train", **cfg.get("tags", {})}.items()
            ],
        }
        if self.use_spot:
            config["StoppingCondition"]["MaxWaitTimeInSeconds"] = self.max_wait
            if cfg.get("checkpoint_s3_uri"):
                config["CheckpointConfig"] = {"S3Uri": cfg["checkpoint_s3_uri"]}
        if cfg.get("subnets"):
            config["VpcConfig"] = {
                "Subnets": list(cfg["subnets"]),
                "SecurityGroupIds": list(cfg["security_group_ids"]),
            }
        if cfg.get("environment"):
            config["Environment"] = {str(k): str(v) for k, v in cfg["environment"].items()}
        if cfg.get("volume_kms_key_id"):
            config["ResourceConfig"]["VolumeKmsKeyId"] = cfg["volume_kms_key_id"]
        if cfg.get("output_kms_key_id"):
            config["OutputDataConfig"]["KmsKeyId"] = cfg["output_kms_key_id"]
        return config

    def poll(self, handle: JobHandle) -> JobHandle:
        described = self._describe(handle.job_id)
        if described is None:
            raise MlopsError(
                f"SageMaker training job {handle.job_id} does not exist (deleted, or another account/region?)"
            )
        return self._handle_from(described, handle)

    def trigger(self, handle: JobHandle, poll_interval: float) -> BaseTrigger | None:
        try:
            import aiobotocore  # noqa: F401  (SageMakerTrigger waits with async clients)
        except ImportError:
            self.log.warning(
                "aiobotocore is not installed: waiting for %s in the worker instead of deferring",
                handle.job_id,
            )
            return None
        from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

        delay = max(1, int(poll_interval))
        budget = self.max_runtime + (self.max_wait or 0) + 3600
        return SageMakerTrigger(
            job_name=handle.job_id,
            job_type="training",
            waiter_delay=delay,
            waiter_max_attempts=max(1, math.ceil(budget / delay)),
            aws_conn_id=self.aws_conn_id,
            region_name=handle.details.get("region"),
        )

    def handle_event(self, handle: JobHandle, event: dict[str, Any]) -> JobHandle:
        """SageMakerTrigger says ``success``/``failed``/``stopped``/``timeout``/``error``: ask the job
        for its definitive state and failure reason, and fail if it is still running."""
        return self.reconcile_event(handle, event, "sagemaker_status", poll_on_error=True)

    def fetch_output(self, handle: JobHandle, local_dir: str) -> str:
        uri = handle.details.get("model_artifacts") or self._model_artifacts_uri(handle.job_id)
        bucket, key = _split_s3(uri, "the job's model artefact")
        os.makedirs(local_dir, exist_ok=True)
        self.log.info("Downloading the model artefact of %s from %s", handle.job_id, uri)
        with tempfile.TemporaryDirectory(dir=local_dir) as tmp:
            archive = self.hook.s3_hook.download_file(
                key=key, bucket_name=bucket, local_path=tmp, preserve_file_name=True
            )
            out = os.path.join(local_dir, "output")
            os.makedirs(out, exist_ok=True)
            _extract(archive, out, uri)
        return require_output(out, uri, "<SM_MODEL_DIR>")

    def cancel(self, handle: JobHandle) -> None:
        from botocore.exceptions import ClientError

        self.log.info("Stopping SageMaker training job %s", handle.job_id)
        try:
            self.hook.get_conn().stop_training_job(TrainingJobName=handle.job_id)
        except ClientError as err:
            # Stopping a job that already ended is a ValidationException: nothing left to stop.
            self.log.warning("Could not stop SageMaker training job %s: %s", handle.job_id, err)

    # ------------------------------------------------------------------ helpers

    def _model_artifacts_uri(self, job_name: str) -> str:
        return f"{self.config['output_path'].rstrip('/')}/{job_name}/output/model.tar.gz"

    def _upload_code(self, spec: TrainingJobSpec, job_name: str) -> str:
        entrypoint = require_entrypoint(spec)
        default = f"{self.config['output_path'].rstrip('/')}/{job_name}/source/sourcedir.tar.gz"
        uri = self.config.get("code_path") or default
        if uri.endswith("/"):
            uri += f"{job_name}/sourcedir.tar.gz"
        bucket, key = _split_s3(uri, "backend_config['code_path']")
        data = pack_source_dir(os.path.dirname(entrypoint))
        self.log.info(
            "Uploading %s (%d bytes, folder of %s) to %s", "sourcedir.tar.gz", len(data), entrypoint, uri
        )
        self.hook.s3_hook.load_bytes(data, key=key, bucket_name=bucket, replace=True)
        return uri

    def _resolve_name(self, spec: TrainingJobSpec) -> tuple[str, dict[str, Any] | None]:
        """The job of this task to reattach to, or the free name to start one under (training job
        names are unique forever: after a failed try, ``<name>-r2`` ...)."""

        def find(name: str) -> tuple[dict[str, Any], str] | None:
            described = self._describe(name)
            return None if described is None else (described, _status_of(described))

        return self.reattach_or_rename(job_name_for(spec), find, MAX_JOB_NAME)

    def _describe(self, job_name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.hook.describe_training_job(job_name)
        except ClientError as err:
            error = err.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "find" in str(error.get("Message", "")).lower():
                return None
            raise

    def _handle_from(self, described: dict[str, Any], previous: JobHandle | None = None) -> JobHandle:
        job_name = described["TrainingJobName"]
        region = (previous.details.get("region") if previous else None) or self.region
        details = {
            "arn": described.get("TrainingJobArn"),
            "region": region,
            "sagemaker_status": described["TrainingJobStatus"],
            "secondary_status": described.get("SecondaryStatus"),
            "model_artifacts": (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
            or self._model_artifacts_uri(job_name),
        }
        if described.get("BillableTimeInSeconds") is not None:
            details["billable_seconds"] = described["BillableTimeInSeconds"]
        return self.job_handle(
            job_name,
            described["TrainingJobStatus"],
            _status_of(described),
            console_url=console_url(region, job_name),
            details=details,
            previous=previous,
            reason=lambda: described.get("FailureReason"),
        )


def _status_of(described: dict[str, Any]) -> str:
    return _STATUS.get(described["TrainingJobStatus"], "running")


def _extract(archive: str, dest: str, what: str) -> None:
    """Extract a job's tar.gz, refusing members that would land outside ``dest``."""
    root = os.path.realpath(dest)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(root, member.name))
            if not (target == root or target.startswith(root + os.sep)) or member.issym() or member.islnk():
                raise TrainingJobFailed(
                    f"{what} contains an unsafe member {member.name!r}; refusing to extract it"
                )
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members checked above
            tar.extractall(root)
