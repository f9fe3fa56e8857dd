"""Serve on a SageMaker real-time endpoint (extra ``amazon``): one production variant per version.

Each version gets a SageMaker model and a production variant named ``<prefix>-v<version>``.
:meth:`SageMakerTarget.prepare` creates the models and an endpoint configuration hosting the
versions of the traffic, and creates the endpoint or moves it to that configuration
(``CreateEndpoint``/``UpdateEndpoint``: minutes, so the wait is deferred to the triggerer) while
the versions already serving keep their weights. :meth:`SageMakerTarget.apply` is one
``UpdateEndpointWeightsAndCapacities`` call that sets the weight of every variant of the endpoint
(the version that does not serve gets 0). :meth:`SageMakerTarget.alarms` reads the named
CloudWatch alarms: any of them in ``ALARM`` rolls the canary back. See docs/deploy/sagemaker.md.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.canary import Traffic
from airflow_mlops.deploy.base import ENDPOINT_OUTCOME_KEYS, EndpointTarget
from airflow_mlops.deploy.traffic import (
    name_prefix,
    resource_name,
    traffic_of,
    traffic_versions,
    versions_by_name,
)
from airflow_mlops.exceptions import DataInputError, MlopsError

if TYPE_CHECKING:
    import logging

    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook


# SageMaker names (models, variants, endpoint configs): [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
MAX_NAME = 63
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
# EndpointStatus values that end by themselves: wait; InService: ready; anything else: failed
_BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
_CONFIG_KEYS = (
    frozenset(
        {
            "aws_conn_id",
            "region_name",
            "endpoint_name",
            "role_arn",
            "image_uri",
            "model_data",
            "instance_type",
            "instance_count",
            "environment",
            "alarms",
            "data_capture_uri",
            "name_prefix",
            "tags",
        }
    )
    | ENDPOINT_OUTCOME_KEYS
)


def variant_weights(traffic: Traffic, variants: dict[str, str]) -> list[dict[str, Any]]:
    """``DesiredWeightsAndCapacities`` of an ``UpdateEndpointWeightsAndCapacities`` that sets the
    whole traffic state: every variant of the endpoint (``{variant name: version}``, a variant
    that is not ours maps to None) gets its version's share, the others 0.

    :raises MlopsError: a version with a share has no variant on the endpoint.
    """
    weights = traffic.weights()
    missing = sorted(set(weights) - set(variants.values()))
    if missing:
        raise MlopsError(
            f"the endpoint hosts no variant for version(s) {missing} (variants: {sorted(variants)}): "
            "prepare the endpoint first (the start of the rollout does)"
        )
    return [
        {"VariantName": name, "DesiredWeight": float(weights.get(version or "", 0.0))}
        for name, version in sorted(variants.items())
    ]


class SageMakerTarget(EndpointTarget):
    """A SageMaker endpoint whose production variants are the versions of the model.

    ``target_config`` keys (see docs/deploy/sagemaker.md): ``endpoint_name``, ``role_arn`` (the
    models' execution role), ``image_uri`` (the inference container) and ``model_data`` (the
    ``model.tar.gz`` of a version: a URI template with ``{version}`` and optionally ``{model}``)
    are required; ``aws_conn_id`` (``aws_default``), ``region_name``, ``instance_type``
    (``ml.m5.large``), ``instance_count`` (1, per variant), ``environment`` (of the container),
    ``alarms`` (CloudWatch alarm names: any in ALARM rolls the canary back),
    ``data_capture_uri`` (S3 prefix: capture requests and responses), ``name_prefix``, ``tags``,
    ``outcomes_arm_column``, ``outcomes_prediction_column``.
    """

    name = "sagemaker"
    title = "SageMaker"
    extra = "amazon"
    requires = ("airflow.providers.amazon.aws.hooks.sagemaker",)
    config_keys = _CONFIG_KEYS

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger, **kwargs: Any) -> None:
        super().__init__(config, log, **kwargs)
        self.require("endpoint_name", "role_arn", "image_uri", "model_data")
        self.endpoint = str(self.config["endpoint_name"])
        if "{version}" not in str(self.config["model_data"]):
            raise ValueError(
                "target_config['model_data'] must be a URI template with {version}, e.g. "
                "'s3://bucket/models/{model}/{version}/model.tar.gz'"
            )
        if int(self.config.get("instance_count", 1)) < 1:
            raise ValueError("target_config['instance_count'] must be at least 1")
        alarms = self.config.get("alarms") or []
        if isinstance(alarms, str) or not all(isinstance(a, str) and a for a in alarms):
            raise ValueError(
                f"target_config['alarms'] must be a list of CloudWatch alarm names, got {alarms!r}"
            )
        self.alarm_names: list[str] = list(alarms)
        self.prefix = name_prefix(self.config, self.model_name, MAX_NAME)
        self.aws_conn_id: str | None = self.config.get("aws_conn_id", "aws_default")

    @cached_property
    def hook(self) -> SageMakerHook:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        return SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.config.get("region_name"))

    @cached_property
    def cloudwatch(self) -> Any:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(
            aws_conn_id=self.aws_conn_id, client_type="cloudwatch", region_name=self.config.get("region_name")
        )
        return hook.conn

    # ------------------------------------------------------------------ names and requests

    def model_config(self, version: str) -> dict[str, Any]:
        """The ``CreateModel`` request of ``version``."""
        data = str(self.config["model_data"]).format(model=self.model_name, version=version)
        container: dict[str, Any] = {"Image": self.config["image_uri"], "ModelDataUrl": data}
        if self.config.get("environment"):
            container["Environment"] = {str(k): str(v) for k, v in self.config["environment"].items()}
        return {
            "ModelName": resource_name(self.prefix, version),
            "ExecutionRoleArn": self.config["role_arn"],
            "PrimaryContainer": container,
            "Tags": self._tags(version),
        }

    def endpoint_config(self, weights: dict[str, float]) -> dict[str, Any]:
        """The ``CreateEndpointConfig`` request hosting the versions of ``{version: initial weight}``.
        Its name ends in a hash of its content: the same request gets the same name on a retry."""
        variants = [
            {
                "VariantName": resource_name(self.prefix, version),
                "ModelName": resource_name(self.prefix, version),
                "InstanceType": self.config.get("instance_type", DEFAULT_INSTANCE_TYPE),
                "InitialInstanceCount": int(self.config.get("instance_count", 1)),
                "InitialVariantWeight": float(weight),
            }
            for version, weight in sorted(weights.items())
        ]
        body: dict[str, Any] = {"ProductionVariants": variants}
        if self.config.get("data_capture_uri"):
            body["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": self.config["data_capture_uri"],
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        name = f"{self.endpoint[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"
        return {"EndpointConfigName": name, **body, "Tags": self._tags(None)}

    def _tags(self, version: str | None) -> list[dict[str, str]]:
        tags = {
            "airflow-mlops:model": self.model_name,
            **{str(k): str(v) for k, v in (self.config.get("tags") or {}).items()},
        }
        if version is not None:
            tags["airflow-mlops:version"] = version
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    # ------------------------------------------------------------------ reads

    def describe(self) -> dict[str, Any] | None:
        """``DescribeEndpoint``, or None when the endpoint does not exist."""
        return self._describe(lambda: self.hook.describe_endpoint(self.endpoint))

    def _describe(self, call: Any) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return call()
        except ClientError as err:
            error = err.response.get("Error", {})
            if error.get("Code") == "ValidationException" and "Could not find" in str(error.get("Message")):
                return None
            raise

    def _variants(self, described: dict[str, Any]) -> dict[str, str | None]:
        """``{variant name: version}`` of every variant (None: a variant that is not ours)."""
        names = [v["VariantName"] for v in described.get("ProductionVariants") or []]
        ours = versions_by_name(names, self.prefix)
        return {name: ours.get(name) for name in names}

    def _weights(self, described: dict[str, Any]) -> dict[str, float]:
        """``{version (or foreign variant name): current weight}``."""
        variants = self._variants(described)
        return {
            variants[v["VariantName"]] or v["VariantName"]: float(
                v.get("CurrentWeight", v.get("DesiredWeight")) or 0.0
            )
            for v in described.get("ProductionVariants") or []
        }

    def variant_versions(self) -> dict[str, str]:
        described = self.describe()
        if described is None:
            return {}
        return {name: version for name, version in self._variants(described).items() if version}

    def serving(self) -> Traffic | None:
        described = self.describe()
        if described is None:
            return Traffic(None)
        return traffic_of(self._weights(described), f"SageMaker endpoint {self.endpoint}")

    # ------------------------------------------------------------------ serving

    def prepare(self, traffic: Traffic) -> None:
        wanted = traffic_versions(traffic)
        if not wanted:
            raise MlopsError(
                f"nothing to serve on SageMaker endpoint {self.endpoint}: the traffic names no version"
            )
        for version in wanted:
            self._ensure_model(version)
        described = self.describe()
        if described is None:
            config = self._ensure_endpoint_config(traffic.weights() or {wanted[0]: 100.0}, wanted)
            self.log.info(
                "Creating SageMaker endpoint %s with configuration %s (%s)",
                self.endpoint,
                config,
                traffic.describe(),
            )
            self.hook.create_endpoint(
                {"EndpointName": self.endpoint, "EndpointConfigName": config, "Tags": self._tags(None)},
                wait_for_completion=False,
            )
            return
        hosted = {v for v in self._variants(described).values() if v}
        status = described.get("EndpointStatus")
        current = self._weights(described)
        missing = [v for v in wanted if v not in hosted]
        idle = sorted(v for v in hosted if v not in wanted and not current.get(v))
        if not missing and not idle:
            self.log.info(
                "SageMaker endpoint %s already hosts v%s (%s): nothing to prepare",
                self.endpoint,
                ", v".join(wanted),
                status,
            )
            return
        if status in _BUSY:
            self.log.info(
                "SageMaker endpoint %s is %s (an update started earlier): waiting for it before hosting v%s",
                self.endpoint,
                status,
                ", v".join(wanted),
            )
            return
        # what serves keeps its weight while the new variants come up with none
        initial = {v: current.get(v, 0.0) for v in wanted}
        if not any(initial.values()):
            initial = {v: traffic.weights().get(v, 0.0) for v in wanted}
        config = self._ensure_endpoint_config(initial, wanted)
        self.log.info(
            "Updating SageMaker endpoint %s to configuration %s: variants %s with weights %s "
            "(added: %s; removed, serving nothing: %s)",
            self.endpoint,
            config,
            [resource_name(self.prefix, v) for v in wanted],
            initial,
            [f"v{v}" for v in missing] or "-",
            [f"v{v}" for v in idle] or "-",
        )
        self.hook.update_endpoint(
            {
                "EndpointName": self.endpoint,
                "EndpointConfigName": config,
                "RetainAllVariantProperties": False,
            },
            wait_for_completion=False,
        )

    def _ensure_model(self, version: str) -> None:
        request = self.model_config(version)
        if self._describe(lambda: self.hook.describe_model(request["ModelName"])) is not None:
            return
        self.log.info(
            "Creating SageMaker model %s from %s",
            request["ModelName"],
            request["PrimaryContainer"]["ModelDataUrl"],
        )
        self.hook.create_model(request)

    def _ensure_endpoint_config(self, weights: dict[str, float], wanted: list[str]) -> str:
        request = self.endpoint_config({v: weights.get(v, 0.0) for v in wanted})
        name = request["EndpointConfigName"]
        if self._describe(lambda: self.hook.describe_endpoint_config(name)) is None:
            self.hook.create_endpoint_config(request)
        return name

    def ready(self, traffic: Traffic) -> tuple[bool, str]:
        described = self.describe()
        if described is None:
            raise MlopsError(
                f"SageMaker endpoint {self.endpoint} does not exist (target_config['endpoint_name']): "
                "the rollout's start creates it"
            )
        status = described.get("EndpointStatus")
        where = f"SageMaker endpoint {self.endpoint}"
        if status in _BUSY:
            return False, f"{where} is {status}"
        if status != "InService":
            raise MlopsError(f"{where} is {status}: {described.get('FailureReason') or 'no reason given'}")
        hosted = {v for v in self._variants(described).values() if v}
        missing = sorted(set(traffic_versions(traffic)) - hosted)
        if missing:
            raise MlopsError(
                f"{where} is InService but hosts no variant for version(s) {missing}: its update was "
                "replaced or rolled back; run the task again to prepare it"
            )
        return True, f"{where} is InService with variants {sorted(self._variants(described))}"

    def apply(self, traffic: Traffic) -> None:
        described = self.describe()
        if described is None:
            raise MlopsError(f"SageMaker endpoint {self.endpoint} does not exist: prepare it first")
        variants = self._variants(described)
        desired = variant_weights(traffic, variants)
        current = {
            v["VariantName"]: float(v.get("DesiredWeight", v.get("CurrentWeight")) or 0.0)
            for v in described.get("ProductionVariants") or []
        }
        if all(current.get(d["VariantName"]) == d["DesiredWeight"] for d in desired):
            self.log.info("SageMaker endpoint %s already serves %s", self.endpoint, traffic.describe())
            return
        self.log.info(
            "SageMaker endpoint %s: setting variant weights %s (%s)",
            self.endpoint,
            {d["VariantName"]: d["DesiredWeight"] for d in desired},
            traffic.describe(),
        )
        self.hook.conn.update_endpoint_weights_and_capacities(
            EndpointName=self.endpoint, DesiredWeightsAndCapacities=desired
        )

    # ------------------------------------------------------------------ analysis

    def alarms(self) -> list[dict[str, Any]]:
        """The alarms of ``target_config['alarms']`` in state ``ALARM`` (metric and composite)."""
        if not self.alarm_names:
            return []
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(self.alarm_names), 100):  # DescribeAlarms takes 100 names
            response = self.cloudwatch.describe_alarms(
                AlarmNames=self.alarm_names[start : start + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for alarm in (response.get("MetricAlarms") or []) + (response.get("CompositeAlarms") or []):
                found[alarm["AlarmName"]] = alarm
        missing = [name for name in self.alarm_names if name not in found]
        if missing:
            raise DataInputError(
                f"target_config['alarms']: no CloudWatch alarm named {missing} in this account and region; "
                "an alarm that does not exist would never roll a canary back"
            )
        firing = [
            {"name": name, "state": found[name]["StateValue"], "reason": found[name].get("StateReason")}
            for name in self.alarm_names
            if found[name].get("StateValue") == "ALARM"
        ]
        for alarm in firing:
            self.log.warning("CloudWatch alarm %s is in ALARM: %s", alarm["name"], alarm["reason"])
        return firing
