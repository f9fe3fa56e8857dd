"""assets.py: every event URI, its outlet, and the names events are about."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_mlops.assets import (
    dataset_name,
    drift_asset_uri,
    emit,
    model_alias_uri,
    model_name_of,
    outlet_for,
    performance_asset_uri,
    subject_of,
    task_origin,
)


def test_model_alias_uri():
    assert model_alias_uri("churn", "champion") == "x-mlflow://churn@champion"


@pytest.mark.parametrize(
    ("build", "kind"), [(drift_asset_uri, "drift"), (performance_asset_uri, "performance")]
)
def test_event_uris_quote_names_but_keep_templates(build, kind):
    assert build("churn") == f"x-mlops://{kind}/churn"
    assert build("churn-v2_a.b~c@d") == f"x-mlops://{kind}/churn-v2_a.b~c@d"  # safe as they are
    assert build("my model/v2") == f"x-mlops://{kind}/my%20model%2Fv2"
    # a templated name is rendered at run time: quoting it would break the template
    assert build("{{ params.model }}") == f"x-mlops://{kind}/{{{{ params.model }}}}"


def test_outlet_is_the_asset_or_an_alias_for_a_templated_uri():
    assert outlet_for("x-mlops://drift/churn", "mlops_drift") == Asset("x-mlops://drift/churn")
    assert outlet_for("x-mlops://drift/{{ params.m }}", "mlops_drift") == AssetAlias("mlops_drift")


class _Events(dict):
    """Airflow's outlet_events accessor: one entry per outlet, with ``extra`` and ``add``."""

    def __missing__(self, outlet):
        self[outlet] = SimpleNamespace(extra={}, added=[])
        self[outlet].add = lambda asset, extra: self[outlet].added.append((asset, extra))
        return self[outlet]


def test_emit_attaches_the_extra_to_an_asset_or_adds_the_event_through_an_alias():
    events = _Events()
    asset, alias = Asset("x-mlflow://churn@champion"), AssetAlias("mlops_model_alias")
    emit({"outlet_events": events}, asset, asset.uri, {"version": "3"})
    emit({"outlet_events": events}, alias, "x-mlflow://other@champion", {"version": "4"})
    assert events[asset].extra == {"version": "3"} and events[asset].added == []
    assert events[alias].added == [(Asset("x-mlflow://other@champion"), {"version": "4"})]


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("models:/churn@champion", "churn"),
        ("models:/churn/3", "churn"),
        ("models:/churn", "churn"),
        ("models:/{{ params.model }}@champion", "{{ params.model }}"),
        ("models:/churn/{{ params.version }}", "churn"),
    ],
)
def test_model_name_of(uri, name):
    assert model_name_of(uri) == name


def test_model_name_of_a_bad_reference_names_it():
    with pytest.raises(ValueError, match="'models:/' is not a model reference"):
        model_name_of("models:/")


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("/data/train.parquet", "train"),
        ("s3://bucket/windows/2024-06-01.csv.gz", "2024-06-01"),
        ("gs://bucket/churn/train/", "train"),
        ("file:///data/TRAIN.PARQUET", "TRAIN"),
        ("/data/x.tsv", "x"),
        ("/data/export", "export"),
    ],
)
def test_dataset_name_is_the_last_segment_without_its_format(uri, name):
    assert dataset_name(uri) == name


def test_subject_is_the_model_name_else_the_referenced_model_else_the_dataset():
    assert subject_of("/data/train.parquet", "churn") == "churn"
    assert subject_of("models:/fraud@champion", None) == "fraud"
    assert subject_of("s3://bucket/reference.parquet", None) == "reference"


def test_task_origin_names_dag_run_task_and_user():
    ti = SimpleNamespace(dag_id="ct", run_id="manual__1", task_id="promote")
    context = {"ti": ti, "dag_run": SimpleNamespace(triggering_user_name="alice")}
    assert task_origin(context) == {
        "dag_id": "ct",
        "run_id": "manual__1",
        "task_id": "promote",
        "user": "alice",
    }
    assert task_origin({"ti": ti})["user"] is None
