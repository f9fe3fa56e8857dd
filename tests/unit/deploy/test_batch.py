"""BatchTarget.score on local files with the hook patched where the target uses it (real
scikit-learn models, real parquet): each row on the arm its id hashes to, scored by that arm's
version on the columns it was trained on. With a real registry and Airflow:
tests/integration/deploy/test_batch.py."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_mlops.core.canary import CANARY, CONTROL, Traffic, on_canary
from airflow_mlops.deploy.batch import ROLLOUT_KEY, BatchTarget
from airflow_mlops.hooks.mlflow import MlflowHook

ROWS = 3_000


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(ROWS)],
            "tenure": rng.integers(0, 72, ROWS),
            "charges": rng.normal(60, 20, ROWS),
            "calls": rng.integers(0, 9, ROWS),
            "contract": rng.choice(["monthly", "yearly", "two-year"], ROWS),
        }
    )
    label = (df["charges"] + 5 * df["calls"] - df["tenure"] > 50).astype(int)
    small = LogisticRegression().fit(df[["tenure", "charges"]], label)  # reads 2 of 5 columns
    full = make_pipeline(
        ColumnTransformer([("num", "passthrough", ["tenure", "charges", "calls"]), ("cat", OneHotEncoder(), ["contract"])]),
        LogisticRegression(max_iter=500),
    ).fit(df[["tenure", "charges", "calls", "contract"]], label)  # fmt: skip
    path = tmp_path_factory.mktemp("scoring") / "day.parquet"
    df.sample(frac=1.0, random_state=1).to_parquet(path, index=False)  # ids out of order
    return SimpleNamespace(path=str(path), models={"1": small, "2": full})


def _target(tmp_path, models) -> tuple[BatchTarget, mock.MagicMock]:
    hook = mock.create_autospec(MlflowHook, instance=True)
    hook.load_model.side_effect = lambda name, version: models[version]
    config = {"predictions": str(tmp_path / "predictions"), "id_column": "customer_id"}
    return BatchTarget(config, mock.Mock(), model_name="churn", mlflow=hook), hook


def _state(traffic: Traffic) -> SimpleNamespace:
    return SimpleNamespace(traffic=lambda: traffic, rollout_id="churn-2-1", champion_alias="champion")


@pytest.mark.parametrize("share", [10.0, 95.0])  # a small and a large canary arm
def test_each_row_is_scored_by_the_version_of_its_arm(scoring, tmp_path, share):
    target, hook = _target(tmp_path, scoring.models)
    traffic = Traffic("1", "2", share)

    result = target.score(scoring.path, "b1", _state(traffic))

    df = pd.read_parquet(scoring.path)
    canary = on_canary(df["customer_id"].to_numpy(), share, "churn-2-1")
    written = pd.read_parquet(result["predictions"][len("file://") :])
    assert list(written.columns) == ["customer_id", "prediction", "model_version", "arm"]
    assert written["customer_id"].tolist() == df["customer_id"].tolist()  # the input's order
    assert written["arm"].tolist() == [CANARY if c else CONTROL for c in canary]
    assert written["model_version"].tolist() == ["2" if c else "1" for c in canary]
    small, full = scoring.models["1"], scoring.models["2"]
    expected = np.empty(len(df), dtype=int)
    expected[~canary] = small.predict(df.loc[~canary, list(small.feature_names_in_)])
    expected[canary] = full.predict(df.loc[canary, list(full.feature_names_in_)])
    assert written["prediction"].tolist() == expected.tolist()
    assert result["arms"] == {
        CONTROL: {"version": "1", "rows": int((~canary).sum())},
        CANARY: {"version": "2", "rows": int(canary.sum())},
    }
    assert [c.args for c in hook.load_model.call_args_list] == [("churn", "1"), ("churn", "2")]

    parquet = pq.ParquetFile(result["predictions"][len("file://") :])
    assert json.loads(parquet.schema_arrow.metadata[ROLLOUT_KEY]) == {
        "rollout": "churn-2-1",
        "traffic": traffic.to_dict(),
    }
    assert str(parquet.schema_arrow.field("model_version").type) == "string"
    group = parquet.metadata.row_group(0)
    assert [group.column(i).is_stats_set for i in range(4)] == [True, True, False, False]


def test_with_no_canary_the_champion_scores_every_row_and_only_it_is_loaded(scoring, tmp_path):
    target, hook = _target(tmp_path, scoring.models)

    result = target.score(scoring.path, "b2", _state(Traffic("1")))

    written = pd.read_parquet(result["predictions"][len("file://") :])
    df = pd.read_parquet(scoring.path)
    small = scoring.models["1"]
    assert written["prediction"].tolist() == small.predict(df[list(small.feature_names_in_)]).tolist()
    assert set(written["arm"]) == {CONTROL} and set(written["model_version"]) == {"1"}
    hook.load_model.assert_called_once_with("churn", "1")
    assert result["rollout"] is None
