"""The pure parts the endpoint targets share: resource names, Traffic -> whole percents, SageMaker
variant weights, Vertex AI traffic split, Azure ML traffic dict, and the Traffic read back."""

from __future__ import annotations

import pytest

from airflow_mlops.core.canary import Traffic
from airflow_mlops.deploy.azure_ml import endpoint_traffic
from airflow_mlops.deploy.sagemaker import variant_weights
from airflow_mlops.deploy.traffic import (
    name_prefix,
    resource_name,
    traffic_of,
    traffic_versions,
    versions_by_name,
    whole_percents,
)
from airflow_mlops.deploy.vertex_ai import traffic_split
from airflow_mlops.exceptions import MlopsError


@pytest.mark.parametrize(
    ("model", "limit", "prefix"),
    [
        ("churn", 63, "churn"),
        ("Churn Model_v2", 63, "churn-model-v2"),
        ("--a..b--", 63, "a-b"),
        ("42-model", 63, "m-42-model"),
        ("___", 63, "model"),
        ("a" * 40, 32, "a" * 23),
        ("ab-" + "c" * 30, 32, "ab-" + "c" * 20),
    ],
)
def test_name_prefix_is_a_safe_name_with_room_for_the_version(model, limit, prefix):
    got = name_prefix({}, model, limit)
    assert got == prefix
    assert len(resource_name(got, "1234567")) <= limit


def test_name_prefix_from_config_is_checked():
    assert name_prefix({"name_prefix": "churn-eu"}, "Churn", 32) == "churn-eu"
    for bad in ("Churn", "1churn", "churn--eu", "churn-", "x" * 24, 7):
        with pytest.raises(ValueError, match=r"target_config\['name_prefix'\]"):
            name_prefix({"name_prefix": bad}, "churn", 32)


def test_versions_by_name_reads_only_our_names():
    names = ["churn-v1", "churn-v12", "churn-eu-v3", "blue", "churn-vx", "churn-v"]
    assert versions_by_name(names, "churn") == {"churn-v1": "1", "churn-v12": "12"}


def test_traffic_versions_include_a_canary_at_zero():
    assert traffic_versions(Traffic("1", "2", 0.0)) == ["1", "2"]
    assert traffic_versions(Traffic("1")) == ["1"]
    assert traffic_versions(Traffic(None)) == []


@pytest.mark.parametrize(
    ("traffic", "percents"),
    [
        (Traffic("1"), {"1": 100}),
        (Traffic("1", "2", 0.0), {"1": 100}),
        (Traffic("1", "2", 10.0), {"1": 90, "2": 10}),
        (Traffic("1", "2", 12.5), {"1": 88, "2": 12}),  # a tie goes to the control
        (Traffic("1", "2", 33.4), {"1": 67, "2": 33}),
        (Traffic("1", "2", 66.6), {"1": 33, "2": 67}),
        (Traffic("1", "2", 0.3), {"1": 99, "2": 1}),  # a canary with a share keeps 1 %
        (Traffic("1", "2", 99.7), {"1": 1, "2": 99}),
        (Traffic("1", "2", 100.0), {"2": 100}),
        (Traffic(None), {}),
    ],
)
def test_whole_percents_sum_to_100(traffic, percents):
    got = whole_percents(traffic)
    assert got == percents
    assert sum(got.values()) in (0, 100)


@pytest.mark.parametrize("share", [x / 10 for x in range(0, 1001, 7)])
def test_whole_percents_stay_within_one_point(share):
    got = whole_percents(Traffic("1", "2", share))
    assert sum(got.values()) == 100
    assert abs(got.get("2", 0) - share) <= 1


def test_sagemaker_variant_weights_cover_every_variant():
    variants = {"churn-v1": "1", "churn-v2": "2", "blue": None}
    assert variant_weights(Traffic("1", "2", 12.5), variants) == [
        {"VariantName": "blue", "DesiredWeight": 0.0},
        {"VariantName": "churn-v1", "DesiredWeight": 87.5},
        {"VariantName": "churn-v2", "DesiredWeight": 12.5},
    ]
    assert variant_weights(Traffic("1"), variants)[1:] == [
        {"VariantName": "churn-v1", "DesiredWeight": 100.0},
        {"VariantName": "churn-v2", "DesiredWeight": 0.0},
    ]
    with pytest.raises(MlopsError, match=r"no variant for version\(s\) \['3'\]"):
        variant_weights(Traffic("1", "3", 10.0), variants)


def test_vertex_traffic_split_by_deployed_model_id():
    deployed = {"901": "1", "902": "2"}
    assert traffic_split(Traffic("1", "2", 50.0), deployed) == {"901": 50, "902": 50}
    assert traffic_split(Traffic("2"), deployed) == {"902": 100}
    with pytest.raises(MlopsError, match=r"\['3'\] are not deployed"):
        traffic_split(Traffic("3"), deployed)


def test_azure_traffic_dict_names_every_deployment():
    deployments = {"churn-v1": "1", "churn-v2": "2", "blue": None}
    assert endpoint_traffic(Traffic("1", "2", 10.0), deployments) == {
        "blue": 0,
        "churn-v1": 90,
        "churn-v2": 10,
    }
    with pytest.raises(MlopsError, match=r"no deployment for version\(s\) \['7'\]"):
        endpoint_traffic(Traffic("7"), deployments)


@pytest.mark.parametrize(
    ("weights", "traffic"),
    [
        ({}, Traffic(None)),
        ({"1": 0.0, "2": 0.0}, Traffic(None)),
        ({"1": 100.0, "2": 0.0}, Traffic("1")),
        ({"1": 90.0, "2": 10.0}, Traffic("1", "2", 10.0)),
        ({"10": 90.0, "9": 10.0}, Traffic("9", "10", 90.0)),  # numeric order, not text
        ({"1": 1.0, "2": 1.0}, Traffic("1", "2", 50.0)),  # SageMaker weights are relative
        ({"1": 66.7, "2": 33.3}, Traffic("1", "2", 33.3)),
        ({"1": 90.0, "blue": 10.0}, Traffic("1", "blue", 10.0)),
    ],
)
def test_traffic_read_back_from_weights(weights, traffic):
    got = traffic_of(weights, "endpoint e")
    assert got == traffic
    assert got.weights() == traffic.weights()


def test_traffic_round_trips_through_weights():
    for share in (0.5, 10.0, 33.3, 50.0, 87.5):
        sent = Traffic("3", "4", share)
        assert traffic_of(sent.weights(), "e").weights() == sent.weights()


def test_three_serving_versions_are_named():
    with pytest.raises(MlopsError, match="endpoint e sends traffic to 3 versions"):
        traffic_of({"1": 50.0, "2": 25.0, "3": 25.0}, "endpoint e")
