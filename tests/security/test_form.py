"""S1 and S3: the trigger form cannot run code or pick a cloud identity.

The reference DAG's form refuses a forbidden backend key when the run is created (Airflow checks
the Param's schema), and a DAG copied without that schema still cannot pass it on:
``TrainModelOperator`` checks the form's settings against the backend's sizing keys before it
reads, uploads or starts anything. The payload is the review's: a ``PYTHONWARNINGS``/``BROWSER``
pair that makes the training subprocess run a shell command, here one writing a marker file.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import ParamValidationError

from tests.security.conftest import ENTRYPOINT

pytestmark = pytest.mark.integration


def _code_execution_payload(marker) -> dict:
    """The review's S1 payload: the job imports ``antigravity``, which opens ``$BROWSER``."""
    return {
        "PYTHONWARNINGS": "all:0:antigravity.x:0:0",
        "BROWSER": f"/bin/sh -c 'id > {marker}' #%s",
    }


def test_the_form_cannot_set_the_jobs_environment_or_interpreter(reference_dag, churn_data, tmp_path):
    marker = tmp_path / "pwned"
    for backend_config in (
        {"env": _code_execution_payload(marker)},
        {"python": "/bin/sh"},
        {"timeout": 600, "inherit_env": ["AWS_*"]},
    ):
        conf = {
            "train_data": churn_data.train,
            "eval_data": churn_data.eval,
            "backend_config": backend_config,
        }
        with pytest.raises(ParamValidationError) as err:
            reference_dag(conf)
        forbidden = next(k for k in backend_config if k != "timeout")
        assert f"'{forbidden}' is not one of ['accelerator_count'" in str(err.value), str(err.value)[:500]
    assert not marker.exists()


def test_the_form_cannot_pick_a_cloud_identity_image_or_connection(reference_dag, churn_data):
    for backend, key, value in [
        ("sagemaker", "role_arn", "arn:aws:iam::999999999999:role/AttackerAdmin"),
        ("sagemaker", "image_uri", "999999999999.dkr.ecr.eu-west-1.amazonaws.com/evil:latest"),
        ("sagemaker", "output_path", "s3://attacker-bucket/out"),
        ("sagemaker", "aws_conn_id", "aws_prod_admin"),
        ("vertex_ai", "service_account", "admin@prod.iam.gserviceaccount.com"),
        ("vertex_ai", "impersonation_chain", "admin@prod.iam.gserviceaccount.com"),
        ("vertex_ai", "gcp_conn_id", "google_prod_admin"),
        ("azure_ml", "azure_ml_conn_id", "azure_prod_admin"),
        ("azure_ml", "environment_variables", {"X": "1"}),
    ]:
        conf = {"backend": backend, "backend_config": {"instance_count": 1, key: value}}
        with pytest.raises(ParamValidationError, match=f"'{key}' is not one of "):
            reference_dag(conf)


SLOPPY_COPY = """
import pendulum
from airflow.sdk import Param, dag
from airflow_mlops.operators.training import TrainModelOperator

@dag(dag_id="t_sloppy_form", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
     params={{"backend": Param("local", type="string"), "backend_config": Param(None, type=["null", "object"])}})
def sloppy():
    # a copy of the reference DAG that kept the form's settings but lost their schema
    TrainModelOperator(
        task_id="train",
        entrypoint={entrypoint!r},
        train_data={train!r},
        registered_model_name={model!r},
        backend="{{{{ params.backend }}}}",
        backend_configs={{"local": {{}}, "sagemaker": {{"role_arn": "arn:aws:iam::1:role/Train",
                                                      "output_path": "s3://ours/out"}}}},
        backend_overrides="{{{{ (params.backend_config or {{}}) | tojson }}}}",
        hyperparameters={{"target": "label", "n_estimators": 5, "seed": 1}},
    )

sloppy()
"""


def test_a_copied_dag_without_the_schema_still_cannot_pass_code_or_identity(
    dag_runner, mlflow_server, model_name, churn_data, tmp_path, capfd
):
    marker = tmp_path / "pwned"
    source = SLOPPY_COPY.format(entrypoint=str(ENTRYPOINT), train=churn_data.train, model=model_name)
    run = dag_runner.run(source, conf={"backend_config": {"env": _code_execution_payload(marker)}})
    assert run.task_states == {"train": "failed"}
    assert not marker.exists()
    logs = "".join(capfd.readouterr())  # dag.test() runs the tasks in this process
    assert (
        "ForbiddenInputError" in logs and "backend setting 'env' may not come from the trigger form" in logs
    )
    assert "Starting local training job" not in logs  # refused before a process started

    identity = {"role_arn": "arn:aws:iam::999999999999:role/AttackerAdmin", "instance_count": 1}
    run = dag_runner.run(source, conf={"backend": "sagemaker", "backend_config": identity})
    assert run.task_states == {"train": "failed"}
    assert "backend setting 'role_arn' may not come from the trigger form" in "".join(capfd.readouterr())
    assert mlflow_server.client().search_model_versions(f"name='{model_name}'") == []


def test_a_copy_of_the_old_reference_dag_does_not_import(dag_runner):
    """The pattern the reference DAG had, form object as the backend's whole config, is refused
    when the DAG is parsed, with the way out in the message."""
    source = f"""
    import pendulum
    from airflow.sdk import Param, dag
    from airflow_mlops.operators.training import TrainModelOperator

    @dag(dag_id="t_old_reference", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         user_defined_macros={{"backend_configs": {{"local": {{}}}}}},
         params={{"backend": Param("local"), "backend_config": Param(None, type=["null", "object"])}})
    def old():
        TrainModelOperator(
            task_id="train", entrypoint={str(ENTRYPOINT)!r}, train_data="/data/t.parquet",
            registered_model_name="m", backend="{{{{ params.backend }}}}",
            backend_config="{{{{ (params.backend_config or backend_configs[params.backend]) | tojson }}}}",
        )

    old()
    """
    with pytest.raises(AssertionError, match="backend_config must not be templated from the run.{1,3}s form"):
        dag_runner.run(source)
