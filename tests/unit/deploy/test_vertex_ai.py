"""Vertex AI endpoint target: the real ``aiplatform_v1`` requests (Model, DeployedModel,
traffic_split update) are built by the Google provider's hooks and checked field by field; only
the network is faked (the hooks' EndpointServiceClient and ModelServiceClient, and the
long-running operations they return)."""

from __future__ import annotations

import logging
from unittest import mock

import pytest

from airflow_mlops.core.canary import Traffic
from airflow_mlops.deploy.base import get_target
from airflow_mlops.exceptions import MlopsError
from tests.helpers.gcp import fake_google_auth
from tests.helpers.triggers import first_event

PROJECT = "mlops-project"
REGION = "europe-west4"
ENDPOINT = "4242"
IMAGE = "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest"
LOG = logging.getLogger("test.vertex.deploy")
PATH = f"projects/{PROJECT}/locations/{REGION}/endpoints/{ENDPOINT}"


class FakeVertexEndpoint:
    """The far side: one endpoint, its deployed models and traffic split, its operations, and the
    model registry. A deploy or undeploy is an operation that runs until :meth:`finish`."""

    def __init__(self) -> None:
        from google.api_core.operation import Operation
        from google.cloud.aiplatform_v1 import EndpointServiceClient, ModelServiceClient
        from google.cloud.aiplatform_v1.types import Endpoint

        self.endpoint = Endpoint(name=PATH, display_name="churn")
        self.models: list = []
        self.pending: list[tuple[str, object]] = []  # (operation name, effect)
        self.done: list[str] = []
        self.requests: dict[str, list] = {"deploy": [], "undeploy": [], "update": [], "upload": []}
        self.finish_when_listed = False  # operations end once seen running (for the trigger)
        self.client = mock.create_autospec(EndpointServiceClient, instance=True)
        self.client.endpoint_path.side_effect = EndpointServiceClient.endpoint_path
        self.client.get_endpoint.side_effect = self._get
        self.client.deploy_model.side_effect = self._deploy
        self.client.undeploy_model.side_effect = self._undeploy
        self.client.update_endpoint.side_effect = self._update
        self.client.list_operations.side_effect = self._operations
        self.model_client = mock.create_autospec(ModelServiceClient, instance=True)
        self.model_client.common_location_path.side_effect = ModelServiceClient.common_location_path
        self.model_client.list_models.side_effect = self._list_models
        self.model_client.upload_model.side_effect = self._upload
        self._operation_cls = Operation

    def _get(self, request, **_):
        from google.api_core.exceptions import NotFound
        from google.cloud.aiplatform_v1.types import Endpoint

        if request["name"] != PATH:
            raise NotFound(f"Endpoint {request['name']} not found")
        return Endpoint.deserialize(Endpoint.serialize(self.endpoint))

    def _operation(self, effect, result=None):
        name = f"{PATH}/operations/{len(self.pending) + len(self.done) + 1}"
        self.pending.append((name, effect))
        operation = mock.create_autospec(self._operation_cls, instance=True)
        operation.result.side_effect = lambda *a, **k: (self.finish(name), result)[1]
        return operation

    def _deploy(self, request, **_):
        assert not self.pending, "the endpoint takes one change at a time"
        from google.cloud.aiplatform_v1.types import DeployedModel

        self.requests["deploy"].append(request)
        deployed = DeployedModel.deserialize(DeployedModel.serialize(request["deployed_model"]))

        def effect():
            deployed.id = str(9000 + len(self.endpoint.deployed_models) + len(self.done))
            self.endpoint.deployed_models.append(deployed)
            if request["traffic_split"]:
                split = {k: v for k, v in request["traffic_split"].items() if k != "0"}
                split[deployed.id] = request["traffic_split"]["0"]
                self.endpoint.traffic_split = split

        return self._operation(effect)

    def _undeploy(self, request, **_):
        assert not self.pending, "the endpoint takes one change at a time"
        self.requests["undeploy"].append(request)

        def effect():
            kept = [d for d in self.endpoint.deployed_models if d.id != request["deployed_model_id"]]
            del self.endpoint.deployed_models[:]
            self.endpoint.deployed_models.extend(kept)

        return self._operation(effect)

    def _update(self, request, **_):
        self.requests["update"].append(request)
        assert request["update_mask"] == {"paths": ["traffic_split"]}
        assert request["endpoint"]["name"] == PATH
        self.endpoint.traffic_split = request["endpoint"]["traffic_split"]
        return self.endpoint

    def _operations(self, request, **_):
        from google.longrunning import operations_pb2

        assert request["name"] == PATH
        ops = [operations_pb2.Operation(name=n, done=False) for n, _ in self.pending]
        ops += [operations_pb2.Operation(name=n, done=True) for n in self.done]
        if self.finish_when_listed:
            self.finish()
        return operations_pb2.ListOperationsResponse(operations=ops)

    def _list_models(self, request, **_):
        wanted = request["filter"].split("=", 1)[1].strip('"')
        return [m for m in self.models if m.display_name == wanted]

    def _upload(self, request, **_):
        from google.cloud.aiplatform_v1.types import Model, UploadModelResponse

        self.requests["upload"].append(request)
        model = Model.deserialize(Model.serialize(request["model"]))
        model.name = f"projects/{PROJECT}/locations/{REGION}/models/{100 + len(self.models)}"
        self.models.append(model)
        return self._operation(lambda: None, UploadModelResponse(model=model.name))

    def finish(self, name: str | None = None) -> None:
        for op_name, effect in list(self.pending):
            if name in (None, op_name):
                effect()
                self.pending.remove((op_name, effect))
                self.done.append(op_name)

    def versions(self) -> dict[str, int]:
        names = {d.id: d.display_name for d in self.endpoint.deployed_models}
        return {names[i]: p for i, p in self.endpoint.traffic_split.items()}


@pytest.fixture
def fake(monkeypatch):
    from airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service import EndpointServiceHook
    from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook

    fake = FakeVertexEndpoint()
    fake_google_auth(monkeypatch, PROJECT)
    monkeypatch.setattr(
        EndpointServiceHook, "get_endpoint_service_client", lambda self, region=None: fake.client
    )
    monkeypatch.setattr(
        ModelServiceHook, "get_model_service_client", lambda self, region=None: fake.model_client
    )
    return fake


def _target(**config):
    values = {
        "region": REGION,
        "endpoint_id": ENDPOINT,
        "artifact_uri": "gs://mlops-models/{model}/{version}/",
        "serving_container_image_uri": IMAGE,
        "machine_type": "n1-highcpu-4",
        "min_replica_count": 2,
        "max_replica_count": 4,
        "service_account": "serving@mlops-project.iam.gserviceaccount.com",
        "environment": {"MLFLOW_MODEL_FLAVOR": "sklearn"},
        "labels": {"team": "ml"},
        **config,
    }
    return get_target("vertex_ai", values, LOG, model_name="churn")


def test_requests_field_by_field(fake):
    from google.cloud.aiplatform_v1.types import DeployedModel, Model

    target = _target(predict_route="/invocations", health_route="/ping")
    model = target.model("3")
    assert isinstance(model, Model)
    assert model.display_name == "churn-v3"
    assert model.artifact_uri == "gs://mlops-models/churn/3/"
    assert model.container_spec.image_uri == IMAGE
    assert [(e.name, e.value) for e in model.container_spec.env] == [("MLFLOW_MODEL_FLAVOR", "sklearn")]
    assert (model.container_spec.predict_route, model.container_spec.health_route) == (
        "/invocations",
        "/ping",
    )
    assert dict(model.labels) == {"team": "ml", "airflow-mlops": "deploy", "mlops-version": "3"}

    deployed = target.deployed_model("3", "projects/p/locations/r/models/7")
    assert isinstance(deployed, DeployedModel)
    assert deployed.model == "projects/p/locations/r/models/7"
    assert deployed.display_name == "churn-v3"
    resources = deployed.dedicated_resources
    assert resources.machine_spec.machine_type == "n1-highcpu-4"
    assert (resources.min_replica_count, resources.max_replica_count) == (2, 4)
    assert deployed.service_account == "serving@mlops-project.iam.gserviceaccount.com"


def test_canary_rollout_on_the_traffic_split(fake):
    target = _target()

    # an empty endpoint: the champion is uploaded and deployed with all the traffic
    target.prepare(Traffic("1"))
    (upload,) = fake.requests["upload"]
    assert upload["parent"] == f"projects/{PROJECT}/locations/{REGION}"
    assert upload["model"].display_name == "churn-v1"
    (deploy,) = fake.requests["deploy"]
    assert deploy["endpoint"] == PATH
    assert deploy["deployed_model"].model == f"projects/{PROJECT}/locations/{REGION}/models/100"
    assert deploy["traffic_split"] == {"0": 100}
    assert target.ready(Traffic("1")) == (
        False,
        f"Vertex AI endpoint {ENDPOINT} ({PROJECT}/{REGION}) has 1 operation(s) running",
    )
    target.prepare(Traffic("1"))  # a retry while the deploy runs deploys nothing twice
    assert len(fake.requests["deploy"]) == 1
    fake.finish()
    assert target.ready(Traffic("1"))[0]
    assert target.serving() == Traffic("1")

    # the canary is deployed with no traffic: the split is untouched
    start = Traffic("1", "2", 0.0)
    target.prepare(start)
    assert fake.requests["deploy"][-1]["traffic_split"] is None
    assert fake.requests["deploy"][-1]["deployed_model"].display_name == "churn-v2"
    assert not target.ready(start)[0]
    fake.finish()
    assert target.ready(start)[0]
    assert fake.versions() == {"churn-v1": 100}

    # 10 % then a rollback: one UpdateEndpoint of traffic_split each, repeated harmlessly
    target.apply(Traffic("1", "2", 10.0))
    target.apply(Traffic("1", "2", 10.0))
    assert len(fake.requests["update"]) == 1
    assert fake.versions() == {"churn-v1": 90, "churn-v2": 10}
    assert target.serving() == Traffic("1", "2", 10.0)
    ids = {d.display_name: d.id for d in fake.endpoint.deployed_models}
    assert target.variant_versions() == {
        ids["churn-v1"]: "1",
        ids["churn-v2"]: "2",
        "churn-v1": "1",
        "churn-v2": "2",
    }
    target.apply(Traffic("1"))
    assert fake.versions() == {"churn-v1": 100}
    assert target.alarms() == []

    # the next canary: the idle v2 is undeployed (waited for), v3 deployed (waited for in ready)
    target.prepare(Traffic("1", "3", 0.0))
    assert [r["deployed_model_id"] for r in fake.requests["undeploy"]] == [ids["churn-v2"]]
    assert fake.requests["deploy"][-1]["deployed_model"].display_name == "churn-v3"
    fake.finish()
    assert sorted(d.display_name for d in fake.endpoint.deployed_models) == ["churn-v1", "churn-v3"]


def test_the_wait_for_a_deploy_is_deferrable(fake):
    from airflow_mlops.triggers.deploy import DeploymentTargetTrigger

    target = _target()
    target.prepare(Traffic("1"))
    trigger = target.trigger(Traffic("1"), poll_interval=0.01, timeout=30)
    path, kwargs = trigger.serialize()
    assert path == "airflow_mlops.triggers.deploy.DeploymentTargetTrigger"
    assert kwargs["target"] == "vertex_ai" and kwargs["config"]["endpoint_id"] == ENDPOINT
    fake.finish_when_listed = True
    event = first_event(DeploymentTargetTrigger(**kwargs))
    assert event.payload["status"] == "success", event.payload
    assert fake.pending == []


def test_apply_refuses_a_version_that_is_not_deployed(fake):
    target = _target()
    target.prepare(Traffic("1"))
    fake.finish()
    with pytest.raises(MlopsError, match=r"version\(s\) \['5'\] are not deployed"):
        target.apply(Traffic("1", "5", 10.0))
    assert fake.requests["update"] == []


def test_a_deployment_that_vanished_is_an_error_not_a_wait(fake):
    target = _target()
    with pytest.raises(MlopsError, match=r"no deployed model for version\(s\) \['1'\]"):
        target.ready(Traffic("1"))


def test_missing_endpoint_names_the_setting(fake):
    with pytest.raises(MlopsError, match=r"target_config\['endpoint_id'\]"):
        _target(endpoint_id="999").serving()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"artifact_uri": "s3://x/{version}"}, "artifact_uri"),
        ({"artifact_uri": "gs://x/model"}, "artifact_uri"),
        ({"min_replica_count": 3, "max_replica_count": 2}, "min_replica_count"),
        ({"endpoint_id": ""}, "endpoint_id"),
        ({"machine": "n1"}, "'machine'"),
        ({"name_prefix": "Bad_Prefix"}, "name_prefix"),
    ],
)
def test_bad_config_names_the_setting(config, match):
    with pytest.raises(ValueError, match=match):
        _target(**config)
