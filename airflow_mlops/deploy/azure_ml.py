"""Serve on an Azure ML managed online endpoint (extra ``azure``): one deployment per version.

Each version gets a managed online deployment named ``<prefix>-v<version>`` on an existing
endpoint. :meth:`AzureMLTarget.prepare` creates the deployments of the traffic (they take no
traffic until the endpoint gives them some; creation takes minutes, so the wait is deferred to the
triggerer) and deletes our deployments that serve nothing and are not wanted.
:meth:`AzureMLTarget.apply` sets the endpoint's whole ``traffic`` dict (whole percents summing to
100, 0 for every other deployment) in one ``online_endpoints.begin_create_or_update``. The
``MLClient`` comes from :class:`~airflow_mlops.hooks.azure_ml.AzureMLHook`. See
docs/deploy/azure_ml.md.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

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

    from azure.ai.ml import MLClient

    from airflow_mlops.hooks.azure_ml import AzureMLHook

# Online deployment names: 3-32 characters, a letter first, then letters, digits and hyphens.
MAX_NAME = 32
DEFAULT_MODEL = "azureml:{model}:{version}"
DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"
# provisioning states that end by themselves: wait; Succeeded: ready; anything else: failed
_BUSY = frozenset({"Creating", "Updating", "Deleting", "Provisioning"})
_CONFIG_KEYS = (
    frozenset(
        {
            "azure_ml_conn_id",
            "endpoint_name",
            "model",
            "environment",
            "code_path",
            "scoring_script",
            "environment_variables",
            "instance_type",
            "instance_count",
            "name_prefix",
            "tags",
        }
    )
    | ENDPOINT_OUTCOME_KEYS
)


def endpoint_traffic(traffic: Traffic, deployments: dict[str, str | None]) -> dict[str, int]:
    """The endpoint's whole ``traffic`` dict for ``traffic``: every deployment of the endpoint
    (``{name: version}``, None for a deployment that is not ours) with its version's whole
    percent, 0 for the others; the percents sum to 100.

    :raises MlopsError: a version with a share has no deployment on the endpoint.
    """
    percents = whole_percents(traffic)
    names = {version: name for name, version in deployments.items() if version is not None}
    missing = sorted(set(percents) - set(names))
    if missing:
        raise MlopsError(
            f"the endpoint has no deployment for version(s) {missing} (deployments: {sorted(deployments)}): "
            "prepare the endpoint first (the start of the rollout does)"
        )
    return {name: percents.get(version or "", 0) for name, version in sorted(deployments.items())}


class AzureMLTarget(EndpointTarget):
    """An Azure ML managed online endpoint whose deployments are the versions of the model.

    ``target_config`` keys (see docs/deploy/azure_ml.md): ``endpoint_name`` (an existing managed
    online endpoint, required); ``azure_ml_conn_id`` (``azure_ml_default``), ``model`` (the model
    a deployment serves: a template with ``{version}`` and optionally ``{model}``, default
    ``azureml:{model}:{version}``: the workspace's registered model), ``environment`` (none for an
    MLflow model), ``code_path`` and ``scoring_script`` (both or neither), ``environment_variables``,
    ``instance_type`` (``Standard_DS3_v2``), ``instance_count`` (1, per deployment), ``name_prefix``,
    ``tags``, ``outcomes_arm_column``, ``outcomes_prediction_column``.
    """

    name = "azure_ml"
    title = "Azure ML"
    extra = "azure"
    requires = ("azure.ai.ml",)
    config_keys = _CONFIG_KEYS

    def __init__(self, config: dict[str, Any] | None, log: logging.Logger, **kwargs: Any) -> None:
        super().__init__(config, log, **kwargs)
        self.require("endpoint_name")
        self.endpoint_name = str(self.config["endpoint_name"])
        if "{version}" not in str(self.config.get("model", DEFAULT_MODEL)):
            raise ValueError(
                "target_config['model'] must be a template with {version}, e.g. 'azureml:churn:{version}'"
            )
        if bool(self.config.get("code_path")) != bool(self.config.get("scoring_script")):
            raise ValueError("target_config: a scoring script needs both 'code_path' and 'scoring_script'")
        if int(self.config.get("instance_count", 1)) < 1:
            raise ValueError("target_config['instance_count'] must be at least 1")
        self.prefix = name_prefix(self.config, self.model_name, MAX_NAME)
        self.conn_id: str = self.config.get("azure_ml_conn_id", "azure_ml_default")

    @cached_property
    def hook(self) -> AzureMLHook:
        from airflow_mlops.hooks.azure_ml import AzureMLHook

        return AzureMLHook(azure_ml_conn_id=self.conn_id)

    @property
    def client(self) -> MLClient:
        return self.hook.get_conn()

    @property
    def where(self) -> str:
        return f"Azure ML endpoint {self.endpoint_name}"

    # ------------------------------------------------------------------ requests

    def deployment(self, version: str) -> Any:
        """The ``ManagedOnlineDeployment`` of ``version``."""
        from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

        code = None
        if self.config.get("code_path"):
            code = CodeConfiguration(
                code=self.config["code_path"], scoring_script=self.config["scoring_script"]
            )
        tags = {
            **(self.config.get("tags") or {}),
            "airflow-mlops:model": self.model_name,
            "airflow-mlops:version": version,
        }
        return ManagedOnlineDeployment(
            name=resource_name(self.prefix, version),
            endpoint_name=self.endpoint_name,
            model=str(self.config.get("model", DEFAULT_MODEL)).format(model=self.model_name, version=version),
            environment=self.config.get("environment"),
            code_configuration=code,
            environment_variables={
                str(k): str(v) for k, v in (self.config.get("environment_variables") or {}).items()
            }
            or None,
            instance_type=self.config.get("instance_type", DEFAULT_INSTANCE_TYPE),
            instance_count=int(self.config.get("instance_count", 1)),
            tags={str(k): str(v) for k, v in tags.items()},
        )

    # ------------------------------------------------------------------ reads

    def endpoint(self) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client.online_endpoints.get(self.endpoint_name)
        except ResourceNotFoundError as err:
            raise MlopsError(
                f"{self.where} does not exist (target_config['endpoint_name']): create the managed online "
                "endpoint first (docs/deploy/azure_ml.md)"
            ) from err

    def _deployments(self) -> dict[str, Any]:
        """``{name: deployment}`` of every deployment of the endpoint."""
        return {d.name: d for d in self.client.online_deployments.list(self.endpoint_name)}

    def _ours(self, deployments: dict[str, Any]) -> dict[str, str | None]:
        """``{name: version}`` of every deployment (None: not ours)."""
        ours = versions_by_name(deployments, self.prefix)
        return {name: ours.get(name) for name in deployments}

    def variant_versions(self) -> dict[str, str]:
        return {name: v for name, v in self._ours(self._deployments()).items() if v}

    def serving(self) -> Traffic | None:
        endpoint = self.endpoint()
        ours = versions_by_name(dict(endpoint.traffic or {}), self.prefix)
        weights = {ours.get(name, name): float(p) for name, p in (endpoint.traffic or {}).items()}
        return traffic_of(weights, self.where)

    # ------------------------------------------------------------------ serving

    def prepare(self, traffic: Traffic) -> None:
        wanted = traffic_versions(traffic)
        endpoint = self.endpoint()
        deployments = self._deployments()
        busy = [
            f"{name} {d.provisioning_state}"
            for name, d in deployments.items()
            if d.provisioning_state in _BUSY
        ]
        if endpoint.provisioning_state in _BUSY:
            busy.insert(0, f"the endpoint {endpoint.provisioning_state}")
        if busy:
            self.log.info(
                "%s is busy (%s): waiting for it before hosting v%s",
                self.where,
                ", ".join(busy),
                ", v".join(wanted),
            )
            return
        ours = self._ours(deployments)
        hosted = {v: name for name, v in ours.items() if v}
        served = endpoint.traffic or {}
        idle = [name for name, v in ours.items() if v and v not in wanted and not served.get(name)]
        changes = [
            (
                f"deleting deployment {name} (v{ours[name]}): it serves nothing and the rollout does not need it",
                lambda name=name: self.client.online_deployments.begin_delete(
                    name=name, endpoint_name=self.endpoint_name
                ),
            )
            for name in idle
        ]
        for version in (v for v in wanted if v not in hosted):
            deployment = self.deployment(version)
            changes.append(
                (
                    f"creating deployment {deployment.name} (model {deployment.model}) on "
                    f"{deployment.instance_count} x {deployment.instance_type} with no traffic",
                    lambda d=deployment: self.client.online_deployments.begin_create_or_update(d),
                )
            )
        change_in_turn(changes, self.log, self.where, wanted)

    def ready(self, traffic: Traffic) -> tuple[bool, str]:
        endpoint = self.endpoint()
        deployments = self._deployments()
        names = {v: name for name, v in self._ours(deployments).items() if v}
        states = {"the endpoint": endpoint.provisioning_state}
        for version in traffic_versions(traffic):
            if version not in names:
                raise MlopsError(
                    f"{self.where} has no deployment for v{version} and none is being created: its creation "
                    "failed or it was deleted; run the task again to create it"
                )
            states[names[version]] = deployments[names[version]].provisioning_state
        failed = {k: s for k, s in states.items() if s not in _BUSY and s != "Succeeded"}
        if failed:
            raise MlopsError(
                f"{self.where}: {', '.join(f'{k} is {s}' for k, s in failed.items())} "
                f"(see `az ml online-deployment get-logs --endpoint-name {self.endpoint_name}`)"
            )
        busy = {k: s for k, s in states.items() if s in _BUSY}
        if busy:
            return False, f"{self.where}: {', '.join(f'{k} is {s}' for k, s in busy.items())}"
        return True, f"{self.where} and deployments {sorted(states)[1:] or '-'} have Succeeded"

    def apply(self, traffic: Traffic) -> None:
        endpoint = self.endpoint()
        wanted = endpoint_traffic(traffic, self._ours(self._deployments()))
        current = {name: int(p) for name, p in (endpoint.traffic or {}).items() if p}
        if current == {name: p for name, p in wanted.items() if p}:
            self.log.info("%s already serves %s", self.where, traffic.describe())
            return
        self.log.info("%s: setting traffic %s (%s)", self.where, wanted, traffic.describe())
        endpoint.traffic = wanted
        self.client.online_endpoints.begin_create_or_update(endpoint)
