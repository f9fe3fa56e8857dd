"""The trust boundary's rules, as pure functions: the form's backend keys, approval, data
locations, model loading plans."""

from __future__ import annotations

import os

import pytest

from airflow_mlops.core.trust import (
    DEFAULT_DATA_SCHEMES,
    DEFAULT_SKOPS_TYPES,
    OPTED_IN,
    SKOPS,
    DataPolicy,
    UntrustedModel,
    approval_required,
    check_overrides,
    confined_path,
    data_location_problem,
    form_override_keys,
    is_table_file_name,
    loading_plan,
    mentions_run_input,
    parse_list,
    promotion_refusal,
    untrusted_skops_types,
    uri_scheme,
)

# ---------------------------------------------------------------- the form's backend keys

SAGEMAKER_SIZING = {"instance_type", "instance_count", "volume_size_gb", "max_runtime_seconds"}


def test_form_keys_are_declared_keys_narrowed_by_the_dag_and_never_code_or_identity():
    declared = SAGEMAKER_SIZING | {"role_arn", "aws_conn_id", "image_uri", "env", "python", "output_path"}
    assert form_override_keys(declared) == SAGEMAKER_SIZING
    assert form_override_keys(declared, ["instance_type", "role_arn"]) == {"instance_type"}
    assert form_override_keys(SAGEMAKER_SIZING, []) == frozenset()


@pytest.mark.parametrize(
    "key",
    [
        "python", "env", "inherit_env", "environment", "environment_variables", "aws_conn_id", "gcp_conn_id",
        "azure_ml_conn_id", "role_arn", "image_uri", "executor_image_uri", "container_image_uri", "command",
        "service_account", "impersonation_chain", "output_path", "code_path", "requirements", "network",
        "subnets", "security_group_ids", "volume_kms_key_id", "checkpoint_s3_uri", "staging_bucket",
        "compute", "tags", "labels", "framework_version", "project_id", "region", "region_name",
    ],
)  # fmt: skip
def test_a_key_that_chooses_code_identity_or_outputs_is_never_a_form_key(key):
    assert form_override_keys({key, "instance_type"}, [key, "instance_type"]) == {"instance_type"}


def test_allowed_overrides_pass_through():
    assert check_overrides({"instance_type": "ml.m5.xlarge", "instance_count": 2}, SAGEMAKER_SIZING,
                           service="the SageMaker backend") == {"instance_type": "ml.m5.xlarge", "instance_count": 2}  # fmt: skip
    assert check_overrides(None, SAGEMAKER_SIZING, service="x") == {}
    assert check_overrides({}, set(), service="x") == {}


def test_a_forbidden_key_is_named_with_the_keys_a_run_may_set():
    with pytest.raises(ValueError) as err:
        check_overrides(
            {"instance_count": 1, "env": {"BROWSER": "sh"}}, {"timeout"}, service="the local backend"
        )
    message = str(err.value)
    assert "'env' may not come from the trigger form" in message
    assert "chooses code, identity" in message
    assert "['timeout'] for the local backend" in message
    with pytest.raises(ValueError, match=r"'use_spot' .*\(the DAG does not let a run choose it\)"):
        check_overrides({"use_spot": True}, {"instance_type"}, service="the SageMaker backend")


@pytest.mark.parametrize("value", [{"a": 1}, ["x"], None, "x" * 201])
def test_override_values_are_short_scalars(value):
    with pytest.raises(ValueError, match="'instance_type' from the trigger form must be a number"):
        check_overrides({"instance_type": value}, {"instance_type"}, service="x")


def test_overrides_must_be_an_object():
    with pytest.raises(ValueError, match="backend_overrides must be a JSON object"):
        check_overrides(["instance_type"], {"instance_type"}, service="x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ (params.backend_config or {}) | tojson }}", True),
        ("{{ dag_run.conf['backend_config'] }}", True),
        ({"env": {"X": "{{ params.x }}"}}, True),
        ([{"a": "{{ dag_run.conf }}"}], True),
        ("{{ var.json.sagemaker_config }}", False),
        ({"role_arn": "{{ var.value.role }}"}, False),
        ("params", False),  # not a template
        ({"env": {"A": "1"}}, False),
        (None, False),
    ],
)
def test_templates_reading_the_run_form_are_recognised(value, expected):
    assert mentions_run_input(value) is expected


# ---------------------------------------------------------------- approval


@pytest.mark.parametrize(
    ("deployment", "form", "force", "user", "expected"),
    [
        (True, False, False, "bob", True),  # the form cannot waive the deployment's requirement
        (True, False, True, "lead", True),
        (False, True, False, "bob", True),  # the form can ask for one
        (False, False, True, "bob", True),  # forcing needs an approval ...
        (False, False, True, "lead", False),  # ... unless the deployment names the user
        (False, False, True, None, True),
        (False, False, False, "bob", False),
    ],
)
def test_approval_required_matrix(deployment, form, force, user, expected):
    required, why = approval_required(
        deployment_requires=deployment, form_requests=form, force=force, user=user, force_users=("lead",)
    )
    assert required is expected
    assert why


def test_promotion_refusal_without_an_approver():
    assert promotion_refusal(forced=False, approved_by=None, deployment_requires=False) is None
    assert promotion_refusal(forced=True, approved_by="carol", deployment_requires=True) is None
    assert "requires a human approval before every promotion" in promotion_refusal(
        forced=False, approved_by=None, deployment_requires=True
    )
    refusal = promotion_refusal(forced=True, approved_by=None, deployment_requires=False, user="bob")
    assert "forced promotion" in refusal and "bob is not in [mlops] force_promote_users" in refusal
    assert (
        promotion_refusal(
            forced=True, approved_by=None, deployment_requires=False, user="lead", force_users=["lead"]
        )
        is None
    )


# ---------------------------------------------------------------- data locations


def test_schemes_default_to_object_stores_and_files_only():
    policy = DataPolicy()
    for uri in ("/data/x.parquet", "file:///data/x.csv", "s3://b/k.parquet", "gs://b/k", "abfs://c/k"):
        assert data_location_problem(uri, policy) is None, uri
    for uri in ("http://169.254.169.254/latest/meta-data/", "https://example.org/x.csv", "ftp://h/x",
                "memory://x", "github://o:r@main/x.csv", "HTTP://127.0.0.1:1/x"):  # fmt: skip
        problem = data_location_problem(uri, policy)
        assert problem and "[mlops] allowed_data_schemes" in problem, uri
    assert "chains fsspec protocols" in data_location_problem("simplecache::http://h/x.csv", policy)
    assert data_location_problem("", policy) == "an empty data location"
    assert "http" not in DEFAULT_DATA_SCHEMES and "https" not in DEFAULT_DATA_SCHEMES


def test_http_only_when_the_deployment_allows_it():
    policy = DataPolicy(schemes=("file", "https"), roots=("https://data.example.org/ml/",))
    assert data_location_problem("https://data.example.org/ml/x.csv", policy) is None
    assert "outside" in data_location_problem("https://data.example.org/other/x.csv", policy)


def test_local_roots_resolve_dots_and_symlinks(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.mkdir()
    (root / "link").symlink_to(secret)
    policy = DataPolicy(roots=(str(root),))
    assert data_location_problem(str(root / "sub" / "x.parquet"), policy) is None
    assert data_location_problem(f"file://{root}/x.csv", policy) is None
    assert data_location_problem(str(root), policy) is None
    for outside in (str(root / ".." / "secret" / ".env"), str(root / "link" / "x.csv"), f"{root}-evil/x.csv", "/etc/passwd"):  # fmt: skip
        problem = data_location_problem(outside, policy)
        assert problem and "outside the folders" in problem and "[mlops] allowed_data_roots" in problem


def test_remote_roots_are_prefixes_on_segment_boundaries():
    policy = DataPolicy(roots=("s3://ml-data/churn/", "/data"))
    assert data_location_problem("s3://ml-data/churn/day=1/x.parquet", policy) is None
    assert data_location_problem("s3://ml-data/churn", policy) is None
    assert "outside" in data_location_problem("s3://ml-data/churn-evil/x", policy)
    assert "outside" in data_location_problem("gs://ml-data/churn/x", policy)
    assert "'..'" in data_location_problem("s3://ml-data/churn/../hr/x.csv", policy)


def test_uri_scheme():
    assert uri_scheme("/a/b") == "file" and uri_scheme("file:///a") == "file"
    assert uri_scheme("S3://b/k") == "s3" and uri_scheme("relative/path.csv") == "file"


def test_table_file_names():
    for name in ("a.parquet", "a.PQ", "a.parq", "a.csv", "a.csv.gz", "a.tsv"):
        assert is_table_file_name(name)
    for name in (".env", "id_rsa", "config.yaml", "credentials", "a.csv.bak"):
        assert not is_table_file_name(name)


# ---------------------------------------------------------------- model loading


def test_skops_scikit_learn_models_load_with_skops():
    flavors = {"sklearn": {"serialization_format": "skops", "pickled_model": "model.skops"}}
    assert loading_plan(flavors, name="m", version="1", trusted_models=()) == SKOPS


@pytest.mark.parametrize(
    ("flavors", "says"),
    [
        ({"sklearn": {"serialization_format": "cloudpickle"}}, "stored as cloudpickle"),
        ({"sklearn": {"serialization_format": "pickle"}}, "stored as pickle"),
        ({"sklearn": {}}, "stored as pickle"),
        (
            {"python_function": {"python_model": "python_model.pkl", "cloudpickle_version": "3"}},
            "PythonModel",
        ),
        ({"python_function": {"loader_module": "my_loader"}, "xgboost": {}}, "no scikit-learn flavour"),
        ({}, "flavours: none"),
    ],
)
def test_anything_that_may_run_code_is_refused_with_how_to_reregister(flavors, says):
    with pytest.raises(UntrustedModel) as err:
        loading_plan(flavors, name="churn", version="3", trusted_models=("other",))
    message = str(err.value)
    assert says in message and "churn v3" in message
    assert "serialization_format='skops'" in message and "[mlops] trusted_pickle_models" in message


def test_a_model_the_deployment_trusts_by_name_uses_mlflows_loader():
    flavors = {"sklearn": {"serialization_format": "cloudpickle"}}
    assert loading_plan(flavors, name="legacy", version="1", trusted_models=("legacy",)) == OPTED_IN


def test_skops_types_beyond_the_deployment_list():
    assert untrusted_skops_types(["numpy.dtype", "posix.system"], DEFAULT_SKOPS_TYPES) == ["posix.system"]
    assert untrusted_skops_types(["sklearn.tree._tree.Tree"], DEFAULT_SKOPS_TYPES) == []


def test_confined_path(tmp_path):
    assert confined_path(str(tmp_path), "model.skops") == os.path.join(
        os.path.realpath(tmp_path), "model.skops"
    )
    assert confined_path(str(tmp_path), "../../etc/passwd") is None
    assert confined_path(str(tmp_path), "/etc/passwd") is None


def test_parse_list():
    assert parse_list(" a, b,,a\nc ") == ("a", "b", "c")
    assert parse_list(None) == () and parse_list("") == () and parse_list(["x", " y "]) == ("x", "y")
