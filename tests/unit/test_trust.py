"""The deployment's side of the trust boundary: ``[mlops]`` options read at run time, the data
location check of every read, the approval check of every promotion."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlops.core.trust import DEFAULT_DATA_SCHEMES, DEFAULT_SKOPS_TYPES
from airflow_mlops.exceptions import DataInputError, ForbiddenInputError
from airflow_mlops.io import choose_engine, hash_table, load_table, parse_data
from airflow_mlops.provider_info import get_provider_info
from airflow_mlops.trust import (
    approval_policy,
    check_approval,
    check_approval_args,
    check_data_location,
    data_policy,
    model_trust,
)

SECRET = "DB_PASSWORD=hunter2-RT42"


def test_defaults_without_any_mlops_option():
    assert data_policy().schemes == DEFAULT_DATA_SCHEMES and data_policy().roots == ()
    assert approval_policy().required is False and approval_policy().force_users == ()
    assert model_trust().pickle_models == () and model_trust().skops_types == DEFAULT_SKOPS_TYPES


def test_provider_info_declares_the_options_with_the_same_defaults():
    options = get_provider_info()["config"]["mlops"]["options"]
    assert options["allowed_data_schemes"]["default"] == ",".join(DEFAULT_DATA_SCHEMES)
    assert options["trusted_skops_types"]["default"] == ",".join(DEFAULT_SKOPS_TYPES)
    for name in ("allowed_data_roots", "require_approval", "force_promote_users", "trusted_pickle_models"):
        assert options[name]["description"], name


def test_options_come_from_the_airflow_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_ROOTS", f"{tmp_path}, s3://b/p/")
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_SCHEMES", "file,s3,https")
    monkeypatch.setenv("AIRFLOW__MLOPS__REQUIRE_APPROVAL", "True")
    monkeypatch.setenv("AIRFLOW__MLOPS__FORCE_PROMOTE_USERS", "lead,admin")
    monkeypatch.setenv("AIRFLOW__MLOPS__TRUSTED_PICKLE_MODELS", "legacy")
    assert data_policy().roots == (str(tmp_path), "s3://b/p/")
    assert data_policy().schemes == ("file", "s3", "https")
    assert approval_policy().required is True and approval_policy().force_users == ("lead", "admin")
    assert model_trust().pickle_models == ("legacy",)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    env = tmp_path / ".env"
    env.write_text(f"{SECRET}\nAPI_KEY=abc\n")
    return env


def test_a_non_table_file_is_refused_before_it_is_read_and_never_quoted(secret_file):
    for call in (
        lambda: load_table(str(secret_file), what="quality gate data"),
        lambda: hash_table(str(secret_file)),
    ):
        with pytest.raises(ForbiddenInputError) as err:
            call()
        assert "is not a parquet or CSV file" in str(err.value)
        assert "hunter2" not in str(err.value) and "DB_PASSWORD" not in str(err.value)
    assert issubclass(ForbiddenInputError, DataInputError)  # no retries, like any bad input


def test_parquet_without_a_suffix_is_recognised_by_its_magic(tmp_path):
    import pandas as pd

    path = tmp_path / "part-0000"
    pd.DataFrame({"x": [1, 2]}).to_parquet(path)
    assert len(load_table(str(path))) == 2


def test_roots_are_enforced_for_every_read(monkeypatch, tmp_path, secret_file):
    allowed = tmp_path / "data"
    allowed.mkdir()
    (allowed / "ok.csv").write_text("x,label\n1,0\n")
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_ROOTS", str(allowed))
    assert check_data_location(str(allowed / "ok.csv")) == str(allowed / "ok.csv")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(f"{SECRET}\n1\n")
    for uri in (str(outside), str(allowed / ".." / "elsewhere.csv"), f"file://{outside}"):
        with pytest.raises(ForbiddenInputError, match=r"eval_data: not read: .* outside the folders") as err:
            load_table(uri, what="eval_data")
        assert "hunter2" not in str(err.value)


def test_urls_are_not_fetched(monkeypatch):
    import fsspec

    def fetch(*args, **kwargs):  # the far side of a network boundary: must not be reached
        raise AssertionError("the URL was fetched")

    monkeypatch.setattr(fsspec.core, "url_to_fs", fetch)
    for uri in ("http://169.254.169.254/latest/meta-data/iam", "https://internal/x.csv"):
        with pytest.raises(ForbiddenInputError, match=r"uses the https?:// scheme,.*allowed_data_schemes"):
            load_table(uri)
        with pytest.raises(ForbiddenInputError):
            hash_table(uri)
        with pytest.raises(ForbiddenInputError, match=r"engine data: not read: .*allowed_data_schemes"):
            choose_engine(parse_data(uri, what="engine data"), "auto")  # not even a parquet footer


def test_table_connections_are_read_only_when_the_deployment_lists_them(monkeypatch):
    # sql:// and spark:// name an Airflow connection: an identity the form must not pick
    for uri in ("sql://prod_warehouse/customers", "spark://prod_spark/db.customers"):
        with pytest.raises(ForbiddenInputError, match=r"train_data: not read: .*allowed_data_schemes"):
            parse_data(uri, what="train_data")
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_SCHEMES", "file,sql")
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_DATA_ROOTS", "sql://warehouse")
    assert parse_data("sql://warehouse/analytics.churn", what="train_data").is_table
    with pytest.raises(ForbiddenInputError, match=r"outside the folders .*allowed_data_roots"):
        parse_data("sql://prod_warehouse/customers", what="train_data")


# ---------------------------------------------------------------- approval


def test_a_forced_promotion_needs_an_approver(monkeypatch):
    origin = {"user": "bob"}
    assert check_approval(origin, False, "", False) is None
    assert check_approval(origin, True, "carol", False) == "carol"
    for empty in (None, "", "None", " "):
        with pytest.raises(ForbiddenInputError, match="forced promotion .* needs a human approval"):
            check_approval(origin, True, empty, False)
    monkeypatch.setenv("AIRFLOW__MLOPS__FORCE_PROMOTE_USERS", "bob")
    assert check_approval(origin, True, None, False) is None


def test_a_required_approval_cannot_be_skipped(monkeypatch):
    with pytest.raises(ForbiddenInputError, match="requires a human approval before every promotion"):
        check_approval({"user": "bob"}, False, None, True)
    monkeypatch.setenv("AIRFLOW__MLOPS__REQUIRE_APPROVAL", "true")
    monkeypatch.setenv("AIRFLOW__MLOPS__FORCE_PROMOTE_USERS", "bob")  # forcing alone never lifts it
    with pytest.raises(ForbiddenInputError, match=r"\[mlops\] require_approval"):
        check_approval({"user": "bob"}, True, None, False)
    assert check_approval({"user": "bob"}, False, "carol", False) == "carol"


def test_approval_arguments_come_from_the_dag_not_the_form():
    check_approval_args("{{ ti.xcom_pull(task_ids='request_approval') }}", True)
    with pytest.raises(ValueError, match="approved_by must not be templated from the run's form"):
        check_approval_args("{{ params.approver }}", False)
    with pytest.raises(ValueError, match="require_approval must be True or False"):
        check_approval_args(None, "{{ params.require_approval }}")
