"""The performance sensor's scoring on a table: streamed through the model in batches, with the
same metric values as scoring the whole file at once."""

from __future__ import annotations

from unittest import mock

import pytest

from airflow_mlops.core.metrics import score
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.io import engine_session, load_table, open_data, parse_data
from airflow_mlops.scoring import score_version_in_batches

pytestmark = pytest.mark.integration
FEATURES = ["price", "age", "rooms"]


@pytest.fixture(scope="module")
def model(engine_data):
    from sklearn.linear_model import LogisticRegression

    train = load_table(engine_data.file("reference"))
    return LogisticRegression(max_iter=500).fit(train[FEATURES], train["member"])


@pytest.mark.parametrize("engine", ["postgres", "duckdb"])
def test_batches_score_as_the_whole_table(engine, model, engine_data, request):
    whole = load_table(engine_data.file("current"))
    expected = score(model, whole[FEATURES], whole["member"], ["accuracy", "roc_auc"])
    uri = (
        f"sql://{request.getfixturevalue('pg')}/current"
        if engine == "postgres"
        else engine_data.file("current")
    )
    hook = mock.create_autospec(MlflowHook, instance=True)
    hook.load_model.return_value = model
    with engine_session() as session:
        table = open_data(session, parse_data(uri), "sql" if engine == "postgres" else "duckdb", what="data")
        batches = table.batches(700)
        scores, rows = score_version_in_batches(hook, "m", "1", batches, target="member",
                                                metrics=["accuracy", "roc_auc"], what=f"data {uri}")  # fmt: skip
    hook.load_model.assert_called_once_with("m", "1")
    assert rows == len(whole) == 2500
    assert scores == pytest.approx(expected, rel=1e-12)


def test_a_batch_without_the_target_is_named(model, pg):
    from airflow_mlops.exceptions import DataInputError

    hook = mock.create_autospec(MlflowHook, instance=True)
    hook.load_model.return_value = model
    with engine_session() as session:
        table = open_data(session, parse_data(f"sql://{pg}/gate_good"), "sql", what="data")
        with pytest.raises(
            DataInputError, match=r"data sql://mlops_engines_pg/gate_good has no target column 'member'"
        ):
            score_version_in_batches(hook, "m", "1", table.batches(500), target="member", metrics=["accuracy"],
                                     what=f"data {table.ref.uri}")  # fmt: skip
