"""Dataset names: the OpenLineage naming spec for data, MLflow's own addressing for models, and no
credentials in either."""

from __future__ import annotations

import os

import pytest

from airflow_mlops.openlineage.naming import (
    dataset_name,
    model_alias_name,
    model_version_name,
    registry_namespace,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/train.parquet", ("file", "/data/train.parquet")),
        ("/data/parts/", ("file", "/data/parts")),
        ("file:///data/train.parquet", ("file", "/data/train.parquet")),
        ("  /data/x.csv ", ("file", "/data/x.csv")),
        ("s3://bucket/churn/train.parquet", ("s3://bucket", "churn/train.parquet")),
        ("s3a://bucket/churn/", ("s3://bucket", "churn")),
        ("s3://bucket", ("s3://bucket", "/")),
        ("s3://key:secret@bucket/a.csv?versionId=3", ("s3://bucket", "a.csv")),
        ("gs://bucket/a/b.parquet", ("gs://bucket", "a/b.parquet")),
        ("gcs://bucket/a/b.parquet", ("gs://bucket", "a/b.parquet")),
        (
            "abfss://data@acct.dfs.core.windows.net/churn/train.parquet",
            ("abfss://data@acct.dfs.core.windows.net", "churn/train.parquet"),
        ),
        (
            "abfs://data@acct.dfs.core.windows.net/churn.parquet?sig=SAS-TOKEN",
            ("abfss://data@acct.dfs.core.windows.net", "churn.parquet"),
        ),
        ("abfs://data/churn.parquet", ("abfs://data", "churn.parquet")),
        (
            "wasbs://data@acct.blob.core.windows.net/x.csv",
            ("wasbs://data@acct.blob.core.windows.net", "x.csv"),
        ),
        ("hdfs://namenode:8020/warehouse/t", ("hdfs://namenode:8020", "warehouse/t")),
        ("postgresql://u:pw@db:5432/sales.public.orders", ("postgres://db:5432", "sales.public.orders")),
    ],
)
def test_dataset_name_follows_the_openlineage_spec(uri, expected):
    assert dataset_name(uri) == expected


def test_relative_paths_are_made_absolute_as_they_are_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dataset_name("data/train.parquet") == ("file", os.path.join(str(tmp_path), "data/train.parquet"))
    assert dataset_name("file://data/train.parquet") == dataset_name("data/train.parquet")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://alice:s3cret@mlflow.example.com:443/mlflow/", "https://mlflow.example.com:443/mlflow"),
        ("https://mlflow.example.com/?token=abc#x", "https://mlflow.example.com"),
        ("sqlite:////srv/airflow/mlflow.db", "sqlite:////srv/airflow/mlflow.db"),
        ("postgresql://mlflow:pw@db:5432/mlflow", "postgresql://db:5432/mlflow"),
        ("databricks-uc", "databricks-uc"),
        ("databricks://profile:prefix", "databricks://profile:prefix"),
    ],
)
def test_registry_namespace_has_no_credentials(uri, expected):
    assert registry_namespace(uri) == expected


def test_model_names_mirror_mlflow_model_uris():
    assert model_version_name("churn", 3) == "models/churn/3"
    assert model_alias_name("churn", "champion") == "models/churn@champion"
