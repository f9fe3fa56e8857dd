"""S7 and S11: the requester can neither switch the approval off nor forge what the approver reads.

The review's S7 run: with approval required by the deployment, a conf of
``{"require_approval": false, "force_promote": true}`` promoted a rejected candidate without
any human. S11: the form's ``reason`` was embedded as raw markdown in the approval request, so it
could append a fake "**Evaluation**: promote" section. Here the reference DAG runs with that conf
and that reason; a responder thread answers the approval the way the Airflow API does.
"""

from __future__ import annotations

import pytest

from airflow_mlops.core.registry import parse_history
from tests.helpers.hitl import Responder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FORGED_REASON = (
    "new labels\n\n---\n\n**Evaluation**: promote\n\n- candidate accuracy 0.97 beats champion v6 0.83\n"
    "<!-- hide the rest"
)


def test_a_forced_promotion_waits_for_a_human_even_when_the_conf_says_no(
    reference_dag, churn_data, mlflow_server, monkeypatch, capfd, caplog
):
    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "true")  # the deployment's DAG setting
    conf = {
        "train_data": churn_data.train,
        "eval_data": churn_data.eval_flipped,  # every label flipped: the candidate is rejected
        "require_approval": False,
        "force_promote": True,
        "reason": FORGED_REASON,
    }
    with Responder("mlops_continuous_training", "request_approval", user_name="carol") as responder:
        run = reference_dag(conf)
    # task logs reach stderr or pytest's log capture, depending on which test configured logging first
    logs = "".join(capfd.readouterr()) + caplog.text
    assert run.task_states["request_approval"] == "success", (run.task_states, logs[-3000:])
    assert run.task_states["no_approval_needed"] == "skipped"
    assert run.task_states["promote"] == "success"
    assert run.xcom("evaluate")["decision"] == "reject"
    assert "the deployment requires a human approval for every promotion" in logs

    # the history says forced, and who approved
    name = reference_dag.model_name
    last = parse_history(mlflow_server.client().get_registered_model(name).tags, "champion")[-1]
    assert (last.action, last.forced, last.approved_by, last.user) == ("promote", True, "carol", "dag_test")
    assert "[forced; evaluation verdict: reject]" in last.reason

    # what the approver read: one verdict (the evaluation's), the reason quoted on one line
    body = responder.body.splitlines()
    assert [line for line in body if line.startswith("**Evaluation**")] == ["**Evaluation**: reject"]
    assert not any(line.startswith(("---", "- candidate accuracy 0.97", "<!--")) for line in body)
    (quoted,) = [line for line in body if line.startswith("> ")]
    assert "new labels" in quoted and "\\*\\*Evaluation\\*\\*" in quoted and "\\<\\!\\-\\-" in quoted
    assert "| metric | candidate v1 |" in responder.body  # metrics in a table (no champion yet)


PROMOTE_ONLY = """
import pendulum
from airflow.sdk import dag
from airflow_mlops.operators.registry import PromoteModelOperator

@dag(dag_id="t_promote_without_approval", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
def promote_only():
    # a copied DAG that lost its approval task: the operator still refuses
    PromoteModelOperator(task_id="forced", model_name={name!r}, version="1", forced=True, reason="r")

promote_only()
"""


def test_the_operator_refuses_a_forced_promotion_without_an_approver(
    dag_runner, mlflow_server, model_name, monkeypatch, capfd
):
    client = mlflow_server.client()
    client.create_registered_model(model_name)
    run = client.create_run(
        client.get_experiment_by_name("Default").experiment_id
    )  # promotion never loads it
    client.create_model_version(model_name, source=f"{run.info.artifact_uri}/m", run_id=run.info.run_id)
    source = PROMOTE_ONLY.format(name=model_name)

    run = dag_runner.run(source)
    logs = "".join(capfd.readouterr())
    assert run.task_states == {"forced": "failed"}, logs[-3000:]
    assert "a forced promotion (over the evaluation's verdict) needs a human approval" in logs
    assert "dag_test is not in [mlops] force_promote_users" in logs
    assert client.get_registered_model(model_name).aliases == {}

    # the deployment's requirement applies to every promotion, forced or not
    monkeypatch.setenv("AIRFLOW__MLOPS__REQUIRE_APPROVAL", "true")
    run = dag_runner.run(source.replace("forced=True", "forced=False"))
    assert run.task_states == {"forced": "failed"}
    assert "requires a human approval before every promotion" in "".join(capfd.readouterr())

    # a user the deployment names may force alone; the history still says forced
    monkeypatch.delenv("AIRFLOW__MLOPS__REQUIRE_APPROVAL")
    monkeypatch.setenv("AIRFLOW__MLOPS__FORCE_PROMOTE_USERS", "dag_test")
    assert dag_runner.run(source).task_states == {"forced": "success"}
    last = parse_history(client.get_registered_model(model_name).tags, "champion")[-1]
    assert (last.forced, last.approved_by, last.user) == (True, None, "dag_test")
