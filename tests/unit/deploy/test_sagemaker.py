"""SageMaker endpoint target without a network: the requests it builds and its configuration
checks (the calls themselves run against moto in tests/integration/deploy/test_sagemaker.py)."""

from __future__ import annotations

import logging

import pytest

from airflow_mlops.deploy.base import get_target

LOG = logging.getLogger("test.sagemaker.deploy")
ROLE = "arn:aws:iam::123456789012:role/SageMakerInference"


def _target(**config):
    values = {
        "endpoint_name": "churn-live",
        "role_arn": ROLE,
        "image_uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve:1",
        "model_data": "s3://models/{model}/{version}/model.tar.gz",
        **config,
    }
    return get_target("sagemaker", values, LOG, model_name="churn")


def test_create_model_request():
    request = _target(environment={"WORKERS": 2}, tags={"team": "ml"}).model_config("7")
    assert request == {
        "ModelName": "churn-v7",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serve:1",
            "ModelDataUrl": "s3://models/churn/7/model.tar.gz",
            "Environment": {"WORKERS": "2"},
        },
        "Tags": [
            {"Key": "airflow-mlops:model", "Value": "churn"},
            {"Key": "team", "Value": "ml"},
            {"Key": "airflow-mlops:version", "Value": "7"},
        ],
    }


def test_endpoint_config_request_is_named_by_its_content():
    target = _target(instance_type="ml.c5.xlarge", instance_count=2, data_capture_uri="s3://capture/churn")
    request = target.endpoint_config({"1": 90.0, "2": 10.0})
    assert request["ProductionVariants"] == [
        {
            "VariantName": "churn-v1",
            "ModelName": "churn-v1",
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 90.0,
        },
        {
            "VariantName": "churn-v2",
            "ModelName": "churn-v2",
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 10.0,
        },
    ]
    assert request["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://capture/churn",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    name = request["EndpointConfigName"]
    assert name.startswith("churn-live-") and len(name) == len("churn-live-") + 8
    assert target.endpoint_config({"2": 10.0, "1": 90.0})["EndpointConfigName"] == name  # a retry
    assert target.endpoint_config({"1": 100.0, "2": 0.0})["EndpointConfigName"] != name
    long = _target(endpoint_name="e" * 63).endpoint_config({"1": 100.0})["EndpointConfigName"]
    assert len(long) == 63


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"endpoint_name": ""}, r"needs 'endpoint_name'"),
        ({"role_arn": None}, r"needs 'role_arn'"),
        ({"model_data": "s3://models/latest.tar.gz"}, r"target_config\['model_data'\]"),
        ({"instance_count": 0}, r"target_config\['instance_count'\]"),
        ({"alarms": "churn-5xx"}, r"target_config\['alarms'\]"),
        ({"alarms": ["ok", ""]}, r"target_config\['alarms'\]"),
        (
            {"instance_typ": "ml.m5.large"},
            r"target_config: unknown SageMaker target key\(s\) \['instance_typ'\] "
            r"\(did you mean 'instance_typ' -> 'instance_type'\?\)",
        ),
    ],
)
def test_bad_config_names_the_setting(config, match):
    with pytest.raises(ValueError, match=match):
        _target(**config)


def test_missing_extra_names_it(monkeypatch):
    import sys

    from airflow_mlops.exceptions import MissingExtraError

    monkeypatch.setitem(sys.modules, "airflow.providers.amazon.aws.hooks.sagemaker", None)
    with pytest.raises(MissingExtraError, match="amazon"):
        _target()
