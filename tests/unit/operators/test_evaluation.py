"""EvaluateModelOperator's branching, with the MLflow hook and the scoring helper patched where the
operator uses them (autospec): the rule itself is ``core.evaluation``'s, tested there; here, what
the operator does with it (XCom, tags, skip or fail). The real thing runs in
tests/integration/operators/test_evaluation.py."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_mlops.core import tags
from airflow_mlops.exceptions import DataInputError, ModelRejected, RegistryError
from airflow_mlops.operators.evaluation import EvaluateModelOperator

NAME = "churn"
EVAL = "/data/eval.parquet"
URL = "http://mlflow.example/#/models/churn/versions/7"
GOOD = {"accuracy": 0.9, "f1": 0.88}
WEAK = {"accuracy": 0.8, "f1": 0.7}


@pytest.fixture
def hook():
    with mock.patch("airflow_mlops.operators.evaluation.MlflowHook", autospec=True) as cls:
        instance = cls.return_value
        instance.model_version_url.return_value = URL
        yield instance


@pytest.fixture
def data():
    with mock.patch(
        "airflow_mlops.operators.evaluation.labelled_data", autospec=True, return_value=("X", [0, 1, 1])
    ) as patched:
        yield patched


@pytest.fixture
def scores():
    """``scores[version] = metrics`` (or an exception) is what scoring that version gives."""
    by_version: dict[str, object] = {}

    def fake(hook, name, version, X, y, metrics, **kwargs):
        result = by_version[version]
        if isinstance(result, Exception):
            raise result
        return dict(result)

    with mock.patch("airflow_mlops.operators.evaluation.score_version", autospec=True, side_effect=fake):
        yield by_version


def _champion(hook, version: str | None) -> None:
    def lookup(name, *, alias=None, version=None, missing_ok=False):
        if alias is None:
            return SimpleNamespace(version=version)
        return None if champion is None else SimpleNamespace(version=champion)

    champion = version
    hook.get_model_version.side_effect = lookup


def _operator(**kwargs) -> EvaluateModelOperator:
    args = dict(
        task_id="evaluate",
        model_name=NAME,
        candidate_version="7",
        eval_data=EVAL,
        target="label",
        metric="accuracy",
        thresholds={"accuracy": 0.7},
    )
    args.update(kwargs)
    return EvaluateModelOperator(**args)


def _context() -> dict:
    return {"ti": mock.MagicMock()}


def _pushed(context) -> dict:
    return {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}


def test_a_better_candidate_is_promoted_and_the_record_returned(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": GOOD, "5": WEAK})
    record = _operator().execute(_context())
    assert record["decision"] == "promote"
    assert record["candidate"] == {"version": "7", "metrics": GOOD}
    assert record["champion"] == {"version": "5", "metrics": WEAK}


def test_a_worse_candidate_with_on_reject_skip_skips(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": WEAK, "5": GOOD})
    with pytest.raises(AirflowSkipException, match="churn v7 rejected: .*does not beat champion v5"):
        _operator(on_reject="skip").execute(_context())


def test_a_worse_candidate_with_on_reject_fail_fails(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": WEAK, "5": GOOD})
    with pytest.raises(ModelRejected, match="churn v7 rejected: .*does not beat champion v5"):
        _operator(on_reject="fail").execute(_context())


def test_no_champion_with_bootstrap_promote_promotes_the_first_candidate(hook, data, scores):
    _champion(hook, None)
    scores.update({"7": WEAK})
    record = _operator(bootstrap="promote").execute(_context())
    assert record["decision"] == "promote" and record["champion"] is None


def test_no_champion_with_bootstrap_fail_fails_even_with_on_reject_skip(hook, data, scores):
    _champion(hook, None)
    scores.update({"7": GOOD})
    with pytest.raises(ModelRejected, match="bootstrap='fail': set a champion first"):
        _operator(bootstrap="fail", on_reject="skip").execute(_context())


def test_a_champion_that_cannot_be_scored_is_recorded_and_a_candidate_above_the_floors_wins(
    hook, data, scores
):
    _champion(hook, "5")
    scores.update(
        {"7": WEAK, "5": DataInputError("eval_data lacks columns ['plan'] that churn v5 was trained on")}
    )
    record = _operator().execute(_context())
    assert record["decision"] == "promote"
    assert record["champion"] == {"version": "5", "metrics": {}}
    assert (
        "champion v5 cannot be scored on this data (eval_data lacks columns ['plan']" in record["reasons"][-1]
    )


def test_a_champion_that_cannot_be_scored_does_not_let_a_candidate_below_the_floors_through(
    hook, data, scores
):
    _champion(hook, "5")
    scores.update({"7": {"accuracy": 0.6, "f1": 0.5}, "5": DataInputError("lacks columns")})
    with pytest.raises(AirflowSkipException, match="candidate accuracy 0.6000 is below the floor 0.7000"):
        _operator().execute(_context())


def test_a_candidate_that_cannot_be_scored_fails_the_task(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": DataInputError("churn v7 fails to predict on eval_data"), "5": GOOD})
    with pytest.raises(DataInputError, match="churn v7 fails to predict"):
        _operator().execute(_context())
    hook.set_version_tags.assert_not_called()


def test_the_decision_is_written_on_the_candidate_version_through_the_hook(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": GOOD, "5": WEAK})
    record = _operator().execute(_context())
    hook.set_version_tags.assert_called_once_with(
        NAME,
        "7",
        {
            tags.EVAL_DECISION: "promote",
            tags.EVAL_RECORD: json.dumps(record, sort_keys=True),
            tags.EVAL_METRIC: "accuracy",
            tags.EVAL_METRICS: json.dumps(GOOD, sort_keys=True),
            tags.EVAL_DATA_URI: EVAL,
        },
    )


def test_the_record_is_pushed_to_xcom_before_the_task_fails(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": WEAK, "5": GOOD})
    context = _context()
    with pytest.raises(ModelRejected) as raised:
        _operator(on_reject="fail").execute(context)
    pushed = _pushed(context)
    assert pushed["return_value"] == raised.value.record
    assert pushed["return_value"]["decision"] == "reject"


def test_the_model_version_link_is_stored(hook, data, scores):
    _champion(hook, "5")
    scores.update({"7": GOOD, "5": WEAK})
    context = _context()
    _operator().execute(context)
    assert _pushed(context) == {"_link_MlflowModelVersionLink": URL}
    hook.model_version_url.assert_called_once_with(NAME, "7")


def test_every_metric_of_the_family_is_wanted_and_the_floors_required(hook, data, scores):
    from airflow_mlops.operators import evaluation

    _champion(hook, None)
    scores.update({"7": {**GOOD, "recall": 0.8}})
    _operator(thresholds={"recall": 0.5}).execute(_context())
    call = evaluation.score_version.call_args
    assert call.args[5] == ["accuracy", "recall", "f1", "precision", "roc_auc"]
    assert call.kwargs["required"] == ["accuracy", "recall"]
    assert call.kwargs["what"] == f"eval_data {EVAL}"


def test_eval_data_is_read_with_its_connection(hook, data, scores):
    _champion(hook, None)
    scores.update({"7": GOOD})
    _operator(eval_conn_id="s3_eval").execute(_context())
    data.assert_called_once_with(EVAL, target="label", setting="eval_data", conn_id="s3_eval")


@pytest.mark.parametrize("version", ["None", "none"])
def test_no_candidate_version_fails_before_reading_anything(hook, data, scores, version):
    with pytest.raises(RegistryError, match="no candidate version of churn to evaluate"):
        _operator(candidate_version=version).execute(_context())
    data.assert_not_called()


def test_a_plain_json_string_of_thresholds_is_parsed_like_a_rendered_one(hook, data, scores):
    operator = _operator(thresholds='{"accuracy": 0.95}')
    assert operator.thresholds == {"accuracy": 0.95}
    _champion(hook, None)
    scores.update({"7": GOOD})
    with pytest.raises(AirflowSkipException, match="below the floor 0.9500"):
        operator.execute(_context())


def test_rendered_thresholds_outside_the_range_fail_naming_the_setting(hook, data, scores):
    operator = _operator(thresholds="{{ params.floors }}")
    operator.thresholds = '{"accuracy": -1}'  # what rendering produced
    with pytest.raises(DataInputError, match=r"thresholds\['accuracy'\] must be between 0 and 1"):
        operator.execute(_context())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thresholds": {"accuracy": float("nan")}}, r"thresholds\['accuracy'\] must be a finite number"),
        ({"thresholds": {"accuracy": -5}}, r"thresholds\['accuracy'\] must be between 0 and 1"),
        ({"thresholds": '{"accuracy": 0.7'}, "thresholds is not valid JSON"),
        ({"thresholds": "[0.7]"}, "thresholds must be a JSON object"),
        ({"thresholds": {"rmse": 1.0}}, "not classification metrics"),
        ({"min_improvement": float("nan")}, "min_improvement must be a finite number"),
        ({"min_improvement": "a lot"}, "min_improvement must be a number"),
        ({"on_reject": "ignore"}, "on_reject must be one of"),
        ({"bootstrap": "maybe"}, "bootstrap must be one of"),
        ({"metric": "auc"}, "unknown metric 'auc'"),
        ({"target": ""}, "target is required"),
        ({"candidate_version": " "}, "candidate_version is required"),
    ],
)
def test_bad_arguments_fail_at_parse(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _operator(**kwargs)


def test_templated_bounds_are_checked_once_rendered():
    operator = _operator(thresholds={"accuracy": "{{ params.floor }}"})
    assert operator.thresholds == {"accuracy": "{{ params.floor }}"}
