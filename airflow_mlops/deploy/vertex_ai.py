"""Serve on a Vertex AI endpoint (extra ``google``): one deployed model per version, a traffic split.

Each version is uploaded once as a Vertex AI model and deployed on the endpoint as a deployed
model, both named ``<prefix>-v<version>``. :meth:`VertexAITarget.prepare` uploads and deploys the
versions of the traffic with no traffic of their own (``DeployModel``: minutes, so the wait is
deferred to the triggerer) and undeploys our deployed models that serve nothing and are not
wanted. :meth:`VertexAITarget.apply` is one ``UpdateEndpoint`` of ``traffic_split`` alone (whole
percents that sum to 100). The Google provider's hooks make every call. See docs/deploy/vertex_ai.md.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.backends.vertex_ai import google_hook, google_project
from airflow_mlops.core.canary import Traffic
from airflow_mlops.deploy.base import ENDPOINT_OUTCOME_KEYS, EndpointTarget
from airflow_mlops.deploy.traffic import (
    change_in_turn,
    name_prefix,
    resource_name,
    traffic_of,
    traffic_versions,
    versions_by_name,
    whole_percents,
)
from airflow_mlops.exceptions import MlopsError

if TYPE_CHECKING:
    import logging

    from airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service import EndpointServiceHook
    from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook


DEFAULT_REGION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-2"
MAX_NAME = 128  # display names
UPLOAD_TIMEOUT = 1800.0
_CONFIG_KEYS = (
    frozenset(
        {
            "gcp_conn_id",
            "impersonation_chain",
            "project_id",
            "region",
            "endpoint_id",
            "artifact_uri",
            "serving_container_image_uri",
            "predict_route",
            "health_route",
            "environment",
            "machine_type",
            "min_replica_count",
            "max_replica_count",
            "service_account",
            "labels",
            "name_prefix",
        }
    )
    | ENDPOINT_OUTCOME_KEYS
)


def traffic_split(traffic: Traffic, deployed: dict[str, str]) -> dict[str, int]:
    """``Endpoint.traffic_split`` of ``traffic``: ``{deployed model id: percent}``, whole percents
    summing to 100, from ``deployed`` (``{deployed model id: version}``); every other deployed
    model gets no traffic (it is left out, which Vertex AI reads as 0).

    :raises MlopsError: a version with a share is not deployed on the endpoint.
    """
    ids = {version: deployed_id for deployed_id, version in deployed.items()}
    percents = whole_percents(traffic)
    missing = sorted(set(percents) - set(ids))
    if missing:
        raise MlopsError(
            f"version(s) {missing} are not deployed on the endpoint (deployed: {sorted(ids)}): "
            "prepare the endpoint first (the start of the rollout does)"
        )
    return {ids[version]: percent for version, percent in percents.items() if percent > 0}


class VertexAITarget(EndpointTarget):
    """A Vertex AI endpoint whose deployed models are the versions of the model.

    ``target_config`` keys (see docs/deploy/vertex_ai.md): ``endpoint_id`` (an existing endpoint),
    ``artifact_uri`` (the model directory of a version: a ``gs://`` URI template with
    ``{version}`` and optionally ``{model}``) and ``serving_container_image_uri`` are required;
    ``gcp_conn_id`` (``google_cloud_default``), ``impersonation_chain``, ``project_id`` (default:
    the connection's), ``region`` (``us-central1``), ``predict_route``, ``health_route``,
    ``environment`` (of the container), ``machine_type`` (``n1-standard-2``),
    ``min_replica_count`` (1), ``max_replica_count`` (the minimum), ``service_account`` (the
    identity the deployed models run as), ``labels``, ``name_prefix``, ``outcomes_arm_column``,
    ``outcomes_prediction_column``.
    """

    name = "vertex_ai"
    title = "Vertex AI"
    extra = "google"
    requires = ("airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service",)
    config_keys = _CONFIG_KEYS

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger, **kwargs: Any) -> None:
        super().__init__(config, log, **kwargs)
        self.require("endpoint_id", "artifact_uri", "serving_container_image_uri")
        self.endpoint_id = str(self.config["endpoint_id"]).rpartition("/")[2]
        if not str(self.config["artifact_uri"]).startswith("gs://") or "{version}" not in str(
            self.config["artifact_uri"]
        ):
            raise ValueError(
                "target_config['artifact_uri'] must be a gs:// URI template with {version}, e.g. "
                "'gs://bucket/models/{model}/{version}/'"
            )
        self.min_replicas = int(self.config.get("min_replica_count", 1))
        self.max_replicas = int(self.config.get("max_replica_count", self.min_replicas))
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                "target_config: 'min_replica_count' must be at least 1 and at most 'max_replica_count', "
                f"got {self.min_replicas} and {self.max_replicas}"
            )
        self.prefix = name_prefix(self.config, self.model_name, MAX_NAME)
        self.conn_id: str = self.config.get("gcp_conn_id", "google_cloud_default")
        self.region: str = self.config.get("region", DEFAULT_REGION)

    @cached_property
    def hook(self) -> EndpointServiceHook:
        from airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service import EndpointServiceHook

        return google_hook(EndpointServiceHook, self.conn_id, self.config)

    @cached_property
    def models(self) -> ModelServiceHook:
        from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook

        return google_hook(ModelServiceHook, self.conn_id, self.config)

    @cached_property
    def project(self) -> str:
        return google_project(self.config, self.hook, self.conn_id, "target_config")

    @property
    def where(self) -> str:
        return f"Vertex AI endpoint {self.endpoint_id} ({self.project}/{self.region})"

    # ------------------------------------------------------------------ requests

    def model(self, version: str) -> Any:
        """The ``aiplatform_v1.Model`` uploaded for ``version``."""
        from google.cloud.aiplatform_v1.types import EnvVar, Model, ModelContainerSpec

        env = [EnvVar(name=str(k), value=str(v)) for k, v in (self.config.get("environment") or {}).items()]
        container = ModelContainerSpec(
            image_uri=self.config["serving_container_image_uri"],
            env=env,
            predict_route=self.config.get("predict_route", ""),
            health_route=self.config.get("health_route", ""),
        )
        return Model(
            display_name=resource_name(self.prefix, version),
            artifact_uri=str(self.config["artifact_uri"]).format(model=self.model_name, version=version),
            container_spec=container,
            labels=self._labels(version),
        )

    def deployed_model(self, version: str, model: str) -> Any:
        """The ``aiplatform_v1.DeployedModel`` of ``version`` (``model``: its resource name)."""
        from google.cloud.aiplatform_v1.types import DedicatedResources, DeployedModel, MachineSpec

        return DeployedModel(
            model=model,
            display_name=resource_name(self.prefix, version),
            dedicated_resources=DedicatedResources(
                machine_spec=MachineSpec(machine_type=self.config.get("machine_type", DEFAULT_MACHINE_TYPE)),
                min_replica_count=self.min_replicas,
                max_replica_count=self.max_replicas,
            ),
            service_account=self.config.get("service_account", ""),
        )

    def _labels(self, version: str) -> dict[str, str]:
        return {**(self.config.get("labels") or {}), "airflow-mlops": "deploy", "mlops-version": str(version)}

    # ------------------------------------------------------------------ reads

    def endpoint(self) -> Any:
        from google.api_core.exceptions import NotFound

        try:
            return self.hook.get_endpoint(
                project_id=self.project, region=self.region, endpoint=self.endpoint_id
            )
        except NotFound as err:
            raise MlopsError(
                f"{self.where} does not exist (target_config['endpoint_id']): create the endpoint first "
                "(docs/deploy/vertex_ai.md)"
            ) from err

    def _deployed(self, endpoint: Any) -> dict[str, str]:
        """``{deployed model id: version}`` of our deployed models."""
        names = versions_by_name([d.display_name for d in endpoint.deployed_models], self.prefix)
        return {d.id: names[d.display_name] for d in endpoint.deployed_models if d.display_name in names}

    def _running(self) -> list[str]:
        """Names of the endpoint's operations that have not finished (a deploy started earlier)."""
        client = self.hook.get_endpoint_service_client(self.region)
        path = client.endpoint_path(self.project, self.region, self.endpoint_id)
        response = client.list_operations(request={"name": path})
        return [op.name for op in response.operations if not op.done]

    def variant_versions(self) -> dict[str, str]:
        endpoint = self.endpoint()
        deployed = self._deployed(endpoint)
        return {**deployed, **{resource_name(self.prefix, v): v for v in deployed.values()}}

    def serving(self) -> Traffic | None:
        endpoint = self.endpoint()
        deployed = self._deployed(endpoint)
        weights = {deployed.get(i, i): float(p) for i, p in dict(endpoint.traffic_split).items()}
        return traffic_of(weights, self.where)

    # ------------------------------------------------------------------ serving

    def prepare(self, traffic: Traffic) -> None:
        wanted = traffic_versions(traffic)
        endpoint = self.endpoint()
        running = self._running()
        if running:
            self.log.info(
                "%s has %d operation(s) running (%s): waiting for them before hosting v%s",
                self.where,
                len(running),
                ", ".join(running),
                ", v".join(wanted),
            )
            return
        deployed = self._deployed(endpoint)
        by_version = {v: i for i, v in deployed.items()}
        split = dict(endpoint.traffic_split)
        idle = [i for i, v in deployed.items() if v not in wanted and not split.get(i)]
        missing = [v for v in wanted if v not in by_version]
        changes = [
            (
                f"undeploying {resource_name(self.prefix, deployed[i])} (v{deployed[i]}): it serves nothing "
                "and the rollout does not need it",
                lambda i=i: self.hook.undeploy_model(
                    project_id=self.project,
                    region=self.region,
                    endpoint=self.endpoint_id,
                    deployed_model_id=i,
                ),
            )
            for i in idle
        ]
        for version in missing:
            # an empty endpoint serves the control at once; a version joining one serves nothing yet
            first = {"0": 100} if not split and version == traffic.control else None
            changes.append(
                (
                    f"deploying {resource_name(self.prefix, version)} (v{version}) with "
                    f"{'all' if first else 'no'} traffic on {self.min_replicas} x "
                    f"{self.config.get('machine_type', DEFAULT_MACHINE_TYPE)}",
                    lambda v=version, first=first: self._deploy(v, first),
                )
            )
        change_in_turn(changes, self.log, self.where, wanted)

    def _deploy(self, version: str, traffic_split: dict[str, int] | None) -> Any:
        return self.hook.deploy_model(
            project_id=self.project,
            region=self.region,
            endpoint=self.endpoint_id,
            deployed_model=self.deployed_model(version, self._ensure_model(version)),
            traffic_split=traffic_split,
        )

    def _ensure_model(self, version: str) -> str:
        """The resource name of ``version``'s Vertex AI model, uploaded if there is none."""
        request = self.model(version)
        found = list(
            self.models.list_models(
                project_id=self.project, region=self.region, filter=f'display_name="{request.display_name}"'
            )
        )
        if found:
            return found[-1].name
        self.log.info("Uploading Vertex AI model %s from %s", request.display_name, request.artifact_uri)
        operation = self.models.upload_model(project_id=self.project, region=self.region, model=request)
        return operation.result(timeout=UPLOAD_TIMEOUT).model

    def ready(self, traffic: Traffic) -> tuple[bool, str]:
        endpoint = self.endpoint()
        running = self._running()
        if running:
            return False, f"{self.where} has {len(running)} operation(s) running"
        hosted = set(self._deployed(endpoint).values())
        missing = sorted(set(traffic_versions(traffic)) - hosted)
        if missing:
            raise MlopsError(
                f"{self.where} has no deployed model for version(s) {missing} and no operation running: "
                "the deployment failed (see the endpoint's operations in the console); run the task again "
                "to deploy it"
            )
        return True, f"{self.where} hosts v{', v'.join(sorted(hosted))}"

    def apply(self, traffic: Traffic) -> None:
        endpoint = self.endpoint()
        split = traffic_split(traffic, self._deployed(endpoint))
        if dict(endpoint.traffic_split) == split:
            self.log.info("%s already serves %s", self.where, traffic.describe())
            return
        self.log.info("%s: setting traffic_split %s (%s)", self.where, split, traffic.describe())
        self.hook.update_endpoint(
            project_id=self.project,
            region=self.region,
            endpoint_id=self.endpoint_id,
            endpoint={"traffic_split": split},
            update_mask={"paths": ["traffic_split"]},
        )
