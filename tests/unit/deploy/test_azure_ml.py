"""Azure ML endpoint target: the real ``azure.ai.ml`` entities (ManagedOnlineDeployment, the
endpoint's traffic and its REST traffic update) are built and checked field by field; only the
network is faked (``MLClient.online_endpoints`` and ``MLClient.online_deployments``, and the
pollers they return)."""

from __future__ import annotations

import copy
import json
import logging
from unittest import mock

import pytest

from airflow_mlops.core.canary import Traffic
from airflow_mlops.deploy.base import get_target
from airflow_mlops.exceptions import MlopsError
from tests.helpers.triggers import first_event

SUB, RG, WS = "00000000-1111-2222-3333-444444444444", "rg-ml", "ws-ml"
CONN = {
    "conn_type": "azure_ml",
    "login": "11111111-2222-3333-4444-555555555555",
    "password": "s3cret",
    "extra": {"tenant_id": "tenant-1", "subscription_id": SUB, "resource_group": RG, "workspace_name": WS},
}
ENDPOINT = "churn-live"
LOG = logging.getLogger("test.azure.deploy")


class FakeOnlineEndpoint:
    """The far side: one managed online endpoint and its deployments. A create, delete or traffic
    update runs (``Creating``/``Deleting``/``Updating``) until :meth:`finish`."""

    def __init__(self) -> None:
        from azure.ai.ml.entities import ManagedOnlineEndpoint
        from azure.ai.ml.operations import OnlineDeploymentOperations, OnlineEndpointOperations
        from azure.core.polling import LROPoller

        self.endpoint = ManagedOnlineEndpoint(name=ENDPOINT, auth_mode="key", provisioning_state="Succeeded")
        self.deployments: dict[str, object] = {}
        self.pending: list = []
        self.created: list = []
        self.deleted: list[str] = []
        self.traffic_updates: list[dict] = []
        self._poller_cls = LROPoller
        self.endpoints = mock.create_autospec(OnlineEndpointOperations, instance=True)
        self.endpoints.get.side_effect = self._get_endpoint
        self.endpoints.begin_create_or_update.side_effect = self._update_endpoint
        self.ops = mock.create_autospec(OnlineDeploymentOperations, instance=True)
        self.ops.list.side_effect = self._list
        self.finish_when_listed = False  # changes end once seen running (for the trigger)
        self.ops.begin_create_or_update.side_effect = self._create
        self.ops.begin_delete.side_effect = self._delete

    def _poller(self, effect):
        self.pending.append(effect)
        poller = mock.create_autospec(self._poller_cls, instance=True)
        poller.result.side_effect = lambda *a, **k: self.finish(effect)
        return poller

    def _list(self, endpoint_name, **_):
        assert endpoint_name == ENDPOINT
        # the service answers with copies: a state seen now does not change under the caller
        listed = [copy.copy(d) for d in self.deployments.values()]
        if self.finish_when_listed:
            self.finish()
        return listed

    def _get_endpoint(self, name, **_):
        from azure.core.exceptions import ResourceNotFoundError

        if name != ENDPOINT:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return self.endpoint

    def _update_endpoint(self, endpoint, **_):
        # what the SDK sends for an existing endpoint: the traffic update body
        body = endpoint._to_rest_online_endpoint_traffic_update("westeurope").as_dict()
        self.traffic_updates.append(body["properties"]["traffic"])
        self.endpoint._provisioning_state = "Updating"
        return self._poller(lambda: setattr(self.endpoint, "_provisioning_state", "Succeeded"))

    def _create(self, deployment, **_):
        assert not self.pending, "the endpoint takes one change at a time"
        self.created.append(deployment)
        deployment._provisioning_state = "Creating"
        self.deployments[deployment.name] = deployment
        return self._poller(lambda: setattr(deployment, "_provisioning_state", "Succeeded"))

    def _delete(self, name, endpoint_name, **_):
        assert not self.pending, "the endpoint takes one change at a time"
        assert endpoint_name == ENDPOINT
        self.deleted.append(name)
        self.deployments[name]._provisioning_state = "Deleting"
        return self._poller(lambda: self.deployments.pop(name))

    def finish(self, effect=None) -> None:
        for pending in list(self.pending):
            if effect in (None, pending):
                pending()
                self.pending.remove(pending)

    def traffic(self) -> dict[str, int]:
        return {k: v for k, v in self.endpoint.traffic.items() if v}


@pytest.fixture
def fake(monkeypatch):
    from azure.ai.ml import MLClient

    monkeypatch.setenv("AIRFLOW_CONN_AZURE_ML_DEFAULT", json.dumps(CONN))
    fake = FakeOnlineEndpoint()
    monkeypatch.setattr(MLClient, "online_endpoints", property(lambda self: fake.endpoints))
    monkeypatch.setattr(MLClient, "online_deployments", property(lambda self: fake.ops))
    return fake


def _target(**config):
    values = {
        "endpoint_name": ENDPOINT,
        "model": "azureml:churn:{version}",
        "instance_type": "Standard_F4s_v2",
        "instance_count": 2,
        "environment_variables": {"WORKERS": 2},
        "tags": {"team": "ml"},
        **config,
    }
    return get_target("azure_ml", values, LOG, model_name="churn")


def test_deployment_field_by_field(fake):
    from azure.ai.ml.entities import ManagedOnlineDeployment

    target = _target(
        environment="azureml:sklearn-serving:4", code_path="/opt/serving", scoring_script="score.py"
    )
    deployment = target.deployment("12")
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert deployment.name == "churn-v12"
    assert deployment.endpoint_name == ENDPOINT
    assert deployment.model == "azureml:churn:12"
    assert deployment.environment == "azureml:sklearn-serving:4"
    assert deployment.code_configuration.scoring_script == "score.py"
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_F4s_v2", 2)
    assert deployment.environment_variables == {"WORKERS": "2"}
    assert deployment.tags == {"team": "ml", "airflow-mlops:model": "churn", "airflow-mlops:version": "12"}
    rest = _target().deployment("12")._to_rest_object(location="westeurope").as_dict()
    assert rest["properties"]["model"] == "azureml:churn:12"
    assert rest["properties"]["endpoint_compute_type"] == "Managed"
    assert rest["sku"] == {"name": "Default", "capacity": 2}


def test_canary_rollout_on_the_endpoint_traffic(fake):
    target = _target()

    target.prepare(Traffic("1"))
    assert [d.name for d in fake.created] == ["churn-v1"]
    assert target.ready(Traffic("1")) == (False, f"Azure ML endpoint {ENDPOINT}: churn-v1 is Creating")
    target.prepare(Traffic("1"))  # a retry while the deployment is created creates nothing twice
    assert len(fake.created) == 1
    fake.finish()
    assert target.ready(Traffic("1"))[0]
    target.apply(Traffic("1"))
    assert fake.traffic_updates == [{"churn-v1": 100}]
    assert not target.ready(Traffic("1"))[0]  # the endpoint is Updating
    fake.finish()
    assert target.serving() == Traffic("1")

    start = Traffic("1", "2", 0.0)
    target.prepare(start)
    assert fake.created[-1].name == "churn-v2"
    assert fake.traffic() == {"churn-v1": 100}  # a new deployment takes no traffic
    fake.finish()
    assert target.ready(start)[0]

    # shares round to whole percents summing to 100; repeated harmlessly
    target.apply(Traffic("1", "2", 12.5))
    fake.finish()
    target.apply(Traffic("1", "2", 12.5))
    assert fake.traffic_updates[-1] == {"churn-v1": 88, "churn-v2": 12}
    assert len(fake.traffic_updates) == 2
    assert target.serving() == Traffic("1", "2", 12.0)
    assert target.variant_versions() == {"churn-v1": "1", "churn-v2": "2"}

    # rollback: the canary's deployment is kept at 0 in the same dict
    target.apply(Traffic("1"))
    assert fake.traffic_updates[-1] == {"churn-v1": 100, "churn-v2": 0}
    fake.finish()

    # the next canary: the idle v2 is deleted (waited for), v3 created (waited for in ready)
    target.prepare(Traffic("1", "3", 0.0))
    assert fake.deleted == ["churn-v2"]
    assert fake.created[-1].name == "churn-v3"
    fake.finish()
    assert sorted(fake.deployments) == ["churn-v1", "churn-v3"]


def test_foreign_deployment_gets_no_traffic(fake):
    from azure.ai.ml.entities import ManagedOnlineDeployment

    fake.deployments["blue"] = ManagedOnlineDeployment(
        name="blue", endpoint_name=ENDPOINT, provisioning_state="Succeeded"
    )
    fake.endpoint.traffic = {"blue": 100}
    target = _target()
    target.prepare(Traffic("1"))
    fake.finish()
    target.apply(Traffic("1"))
    assert fake.traffic_updates == [{"blue": 0, "churn-v1": 100}]


def test_the_wait_for_a_deployment_is_deferrable(fake):
    from airflow_mlops.triggers.deploy import DeploymentTargetTrigger

    target = _target()
    target.prepare(Traffic("1"))
    path, kwargs = target.trigger(Traffic("1"), poll_interval=0.01, timeout=30).serialize()
    assert kwargs["target"] == "azure_ml" and kwargs["config"]["endpoint_name"] == ENDPOINT
    fake.finish_when_listed = True
    event = first_event(DeploymentTargetTrigger(**kwargs))
    assert event.payload["status"] == "success", event.payload
    assert fake.deployments["churn-v1"].provisioning_state == "Succeeded"


def test_failed_deployment_fails_the_wait(fake):
    target = _target()
    target.prepare(Traffic("1"))
    fake.deployments["churn-v1"]._provisioning_state = "Failed"
    with pytest.raises(MlopsError, match="churn-v1 is Failed.*get-logs"):
        target.ready(Traffic("1"))


def test_apply_refuses_a_version_without_deployment(fake):
    with pytest.raises(MlopsError, match=r"no deployment for version\(s\) \['4'\]"):
        _target().apply(Traffic("4"))
    assert fake.traffic_updates == []


def test_missing_endpoint_names_the_setting(fake):
    with pytest.raises(MlopsError, match=r"target_config\['endpoint_name'\]"):
        _target(endpoint_name="nope").serving()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"model": "azureml:churn:1"}, r"\['model'\]"),
        ({"code_path": "/opt/serving"}, "scoring_script"),
        ({"instance_count": 0}, "instance_count"),
        ({"endpoint": "x"}, "'endpoint'"),
        ({"name_prefix": "a-very-long-prefix-for-azure-ml"}, "name_prefix"),
    ],
)
def test_bad_config_names_the_setting(config, match):
    with pytest.raises(ValueError, match=match):
        _target(**config)
