"""MlflowHook.load_model: where the artefacts are read from, and the skops trust check, with
``MlflowClient`` patched where the hook builds it (the registry is the far side of the network) and
real skops model folders. Against a real server: tests/security/test_models.py."""

from __future__ import annotations

import builtins
import os
from unittest import mock

import pytest

from airflow_mlops.exceptions import UnsafeModelError
from airflow_mlops.hooks.mlflow import MlflowHook, _local_dir
from airflow_mlops.trust import _flavors, load_model_dir


def _save(path, model, trusted=None) -> str:
    import mlflow.sklearn

    mlflow.sklearn.save_model(
        model,
        path,
        serialization_format="skops",
        skops_trusted_types=trusted,
        pip_requirements=["scikit-learn"],
    )
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    root = tmp_path_factory.mktemp("models")
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    safe = _save(root / "safe", LogisticRegression().fit(X, y))
    evil = Pipeline([("f", FunctionTransformer(func=builtins.eval)), ("m", LogisticRegression().fit(X, y))])
    # the model's own MLmodel trusts eval: the deployment's list decides, not the model's
    return {"safe": safe, "evil": _save(root / "evil", evil, ["builtins.eval", "numpy.dtype"])}


def test_the_flavors_are_those_mlflow_reads(models):
    from mlflow.models import Model

    for path in models.values():
        assert _flavors(path) == Model.load(path).flavors
        assert _flavors(path)["sklearn"]["serialization_format"] == "skops"


def test_a_model_folder_without_mlmodel_fails_with_mlflows_message(tmp_path):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="MLmodel"):
        _flavors(str(tmp_path))


def test_a_skops_file_with_untrusted_types_is_refused_naming_them(models):
    with pytest.raises(UnsafeModelError, match=r"churn v3 \(skops\) holds types .*\['builtins.eval'\]"):
        load_model_dir(models["evil"], name="churn", version="3", log=mock.Mock())
    model, keep = load_model_dir(models["safe"], name="churn", version="2", log=mock.Mock())
    assert hasattr(model, "predict_proba") and keep is False


def test_the_deployment_can_trust_more_skops_types(models, monkeypatch):
    monkeypatch.setenv("AIRFLOW__MLOPS__TRUSTED_SKOPS_TYPES", "numpy.dtype,builtins.eval")
    model, _ = load_model_dir(models["evil"], name="churn", version="3", log=mock.Mock())
    assert model.steps[0][1].func is builtins.eval  # vetted by the deployment, so built


def test_local_dir_is_a_folder_on_this_machine_only(tmp_path):
    assert _local_dir(str(tmp_path)) == str(tmp_path)
    assert _local_dir(f"file://{tmp_path}") == str(tmp_path)
    for remote in (
        "s3://bucket/models/m-1/artifacts",
        "models:/m-1",
        "mlflow-artifacts:/0/m-1",
        "file://host/x",
    ):
        assert _local_dir(remote) is None, remote
    assert _local_dir(str(tmp_path / "missing")) is None


def test_a_local_artifact_store_is_read_in_place(client, models):
    client.get_model_version_download_uri.return_value = models["safe"]
    before = sorted(os.listdir(models["safe"]))
    with mock.patch("mlflow.artifacts.download_artifacts", autospec=True) as download:
        model = MlflowHook("mlflow_unit").load_model("churn", 2)
    assert hasattr(model, "predict_proba")
    client.get_model_version_download_uri.assert_called_once_with("churn", "2")
    download.assert_not_called()
    assert sorted(os.listdir(models["safe"])) == before  # nothing copied into, or removed from, the store


def test_a_remote_store_is_downloaded_to_a_temporary_folder_removed_after(client, models):
    import shutil

    client.get_model_version_download_uri.return_value = "s3://bucket/models/m-1/artifacts"
    folders = []

    def download(artifact_uri, dst_path, tracking_uri):
        folders.append(dst_path)
        return shutil.copytree(models["safe"], os.path.join(dst_path, "artifacts"))

    with mock.patch("mlflow.artifacts.download_artifacts", autospec=True, side_effect=download):
        model = MlflowHook("mlflow_unit").load_model("churn", 2)
    assert hasattr(model, "predict_proba")
    assert len(folders) == 1 and not os.path.exists(folders[0])
    assert os.path.isdir(models["safe"])


def test_an_explicit_destination_is_always_downloaded_to_and_kept(client, models, tmp_path):
    import shutil

    client.get_model_version_download_uri.return_value = models["safe"]

    def download(artifact_uri, dst_path, tracking_uri):
        return shutil.copytree(artifact_uri, os.path.join(dst_path, "artifacts"))

    with mock.patch("mlflow.artifacts.download_artifacts", autospec=True, side_effect=download):
        MlflowHook("mlflow_unit").load_model("churn", 2, dst_path=str(tmp_path / "copy"))
    assert os.path.isfile(tmp_path / "copy" / "artifacts" / "MLmodel")
