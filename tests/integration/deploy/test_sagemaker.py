"""SageMaker endpoint target against a moto server on 127.0.0.1 (SageMaker and CloudWatch).

Every call is a real boto3 request over HTTP through the Amazon provider's hooks. moto has no
UpdateEndpoint; the fake below adds it the way SageMaker behaves: the endpoint moves to the new
configuration's variants and stays ``Updating`` until the test (or the first describe after
``finish_on_describe`` is set) completes it.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pandas as pd
import pytest

from airflow_mlops.core.canary import ROLLBACK, RolloutPlan, Traffic, analyse
from airflow_mlops.exceptions import DataInputError, MlopsError
from tests.helpers.aws import ACCOUNT, REGION, moto_server
from tests.helpers.triggers import first_event

pytestmark = pytest.mark.integration

ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerInference"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlflow-pyfunc:3.1"
ENDPOINT = "churn-live"
MODEL = "Churn Model"
ALARM = "churn-live-5xx"


class FakeEndpoints:
    """The far side of UpdateEndpoint, which moto lacks."""

    def __init__(self) -> None:
        self.updates: list[dict] = []
        self.finish_on_describe = False

    @property
    def backend(self):
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION]

    def update(self, name: str, config: str, retain: bool | None) -> str:
        endpoint = self.backend.endpoints[name]
        variants = self.backend.endpoint_configs[config].production_variants
        endpoint.endpoint_config_name = config
        endpoint.production_variants = endpoint._process_production_variants(variants)
        endpoint.endpoint_status = "Updating"
        self.updates.append({"endpoint": name, "config": config, "retain": retain})
        return endpoint.arn

    def finish(self, name: str = ENDPOINT) -> None:
        self.backend.endpoints[name].endpoint_status = "InService"

    def status(self, name: str = ENDPOINT) -> str:
        return self.backend.endpoints[name].endpoint_status


@pytest.fixture(scope="module")
def aws():
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    fake = FakeEndpoints()
    original_describe = SageMakerResponse.describe_endpoint

    def update_endpoint(self):
        arn = fake.update(
            self._get_param("EndpointName"),
            self._get_param("EndpointConfigName"),
            self._get_param("RetainAllVariantProperties"),
        )
        return ActionResult({"EndpointArn": arn})

    def describe_endpoint(self):
        result = original_describe(self)
        name = self._get_param("EndpointName")
        if fake.finish_on_describe and name in fake.backend.endpoints and fake.status(name) == "Updating":
            fake.finish(name)  # the next describe sees InService
        return result

    with pytest.MonkeyPatch.context() as mp, moto_server(mp, REGION) as url:
        mp.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
        mp.setattr(SageMakerResponse, "describe_endpoint", describe_endpoint)
        import boto3

        fake.cloudwatch = boto3.client("cloudwatch", endpoint_url=url, region_name=REGION)
        fake.sagemaker = boto3.client("sagemaker", endpoint_url=url, region_name=REGION)
        fake.cloudwatch.put_metric_alarm(
            AlarmName=ALARM,
            MetricName="Invocation5XXErrors",
            Namespace="AWS/SageMaker",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=5,
            ComparisonOperator="GreaterThanThreshold",
            Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        )
        yield fake


def _target(**config):
    from airflow_mlops.deploy.base import get_target

    values = {
        "endpoint_name": ENDPOINT,
        "role_arn": ROLE,
        "image_uri": IMAGE,
        "model_data": "s3://models/{model}/{version}/model.tar.gz",
        "instance_type": "ml.c5.large",
        "alarms": [ALARM],
        "tags": {"team": "ml"},
        **config,
    }
    return get_target("sagemaker", values, logging.getLogger("test.sagemaker"), model_name=MODEL)


def _weights(aws) -> dict[str, float]:
    described = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    return {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}


def test_canary_on_endpoint_variants_rolls_back_when_an_alarm_fires(aws, tmp_path):
    from airflow_mlops.triggers.deploy import DeploymentTargetTrigger

    target = _target()

    # 1. first deployment: the endpoint is created with the champion alone
    target.prepare(Traffic("1"))
    model = aws.sagemaker.describe_model(ModelName="churn-model-v1")
    assert model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://models/Churn Model/1/model.tar.gz"
    ready, message = target.ready(Traffic("1"))
    assert ready, message
    target.apply(Traffic("1"))
    assert _weights(aws) == {"churn-model-v1": 100.0}
    assert target.serving() == Traffic("1")

    # 2. prepare the canary: a second variant with no traffic; the update is waited for
    start = Traffic("1", "2", 0.0)
    target.prepare(start)
    assert aws.updates[-1]["retain"] is False
    config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=aws.updates[-1]["config"])
    assert [
        (v["VariantName"], v["ModelName"], v["InstanceType"], v["InitialVariantWeight"])
        for v in config["ProductionVariants"]
    ] == [
        ("churn-model-v1", "churn-model-v1", "ml.c5.large", 100.0),
        ("churn-model-v2", "churn-model-v2", "ml.c5.large", 0.0),
    ]
    assert target.ready(start) == (False, f"SageMaker endpoint {ENDPOINT} is Updating")
    target.prepare(start)  # a retry while the update runs starts no second one
    assert len(aws.updates) == 1

    # the deferrable wait: the trigger polls until the endpoint is InService
    aws.finish_on_describe = True
    trigger = target.trigger(start, poll_interval=0.01, timeout=30)
    assert isinstance(trigger, DeploymentTargetTrigger)
    path, kwargs = trigger.serialize()
    event = first_event(DeploymentTargetTrigger(**kwargs))
    assert event.payload["status"] == "success", event.payload
    assert target.ready(start)[0]
    assert target.variant_versions() == {"churn-model-v1": "1", "churn-model-v2": "2"}

    # 3. the canary at 10 %: one weights call, repeated harmlessly
    canary = Traffic("1", "2", 10.0)
    target.apply(canary)
    target.apply(canary)
    assert _weights(aws) == {"churn-model-v1": 90.0, "churn-model-v2": 10.0}
    assert target.serving() == canary
    assert target.alarms() == []

    # 4. an alarm fires: the analysis rolls back whatever the outcomes say
    outcomes = tmp_path / "outcomes.csv"
    pd.DataFrame(
        {
            "variant": ["churn-model-v1"] * 3 + ["churn-model-v2"] * 2 + ["someone-else"],
            "prediction": [1, 0, 1, 1, 1, 0],
            "label": [1, 0, 1, 1, 1, 0],
        }
    ).to_csv(outcomes, index=False)
    state = SimpleNamespace(control="1", candidate="2")
    stats = target.outcomes(state, str(outcomes), target="label", metric="accuracy")
    assert (stats["control"].n, stats["canary"].n) == (3, 2)
    aws.cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5XX errors > 5")
    alarms = target.alarms()
    assert alarms == [{"name": ALARM, "state": "ALARM", "reason": "5XX errors > 5"}]
    record = analyse(
        stats["control"], stats["canary"], RolloutPlan(min_samples=1), share=10.0, step_at=None, alarms=alarms
    )
    assert record["verdict"] == ROLLBACK

    # 5. the rollback's traffic puts all weight back on the control variant
    target.apply(Traffic("1"))
    assert _weights(aws) == {"churn-model-v1": 100.0, "churn-model-v2": 0.0}
    assert target.serving() == Traffic("1")

    # 6. aligning the endpoint with the champion drops the idle variant (billed while it stays)
    aws.finish_on_describe = False
    target.prepare(Traffic("1"))
    assert target.variant_versions() == {"churn-model-v1": "1"}
    assert _weights(aws) == {"churn-model-v1": 100.0}
    target.prepare(Traffic("1"))  # the update runs: nothing more
    assert len(aws.updates) == 2
    aws.finish()
    target.prepare(Traffic("1"))  # done: nothing to prepare
    assert len(aws.updates) == 2

    # 7. the next canary adds its variant; v1 keeps serving meanwhile
    target.prepare(Traffic("1", "3", 0.0))
    assert target.variant_versions() == {"churn-model-v1": "1", "churn-model-v3": "3"}
    assert _weights(aws) == {"churn-model-v1": 100.0, "churn-model-v3": 0.0}
    aws.finish()


def test_apply_refuses_a_version_the_endpoint_does_not_host(aws):
    target = _target(endpoint_name="other-endpoint")
    target.prepare(Traffic("1"))
    with pytest.raises(MlopsError, match=r"no variant for version\(s\) \['7'\]"):
        target.apply(Traffic("1", "7", 10.0))


def test_missing_alarm_is_an_error_naming_the_setting(aws):
    with pytest.raises(DataInputError, match=r"target_config\['alarms'\].*\['no-such-alarm'\]"):
        _target(alarms=[ALARM, "no-such-alarm"]).alarms()
