"""templating.py: telling a Jinja template from a value, and JSON-object arguments."""

from __future__ import annotations

import pytest

from airflow_mlops.exceptions import DataInputError
from airflow_mlops.templating import is_templated, json_object_arg


@pytest.mark.parametrize("value", ["{{ ds }}", "s3://b/{{ ds }}.parquet", "{% if x %}a{% endif %}", "{{x}}"])
def test_templates(value):
    assert is_templated(value)


@pytest.mark.parametrize(
    "value", ["s3://b/x.parquet", "{ not: a template }", "", None, 3, {"{{": 1}, ["{{ x }}"]]
)
def test_values(value):
    assert not is_templated(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ("{}", {}),
        ('{"timeout": 60, "env": {"A": "1"}}', {"timeout": 60, "env": {"A": "1"}}),
    ],
)
def test_json_object_arg_reads_none_empty_and_json_text(value, expected):
    assert json_object_arg("backend_config", value) == expected


def test_json_object_arg_passes_a_dict_through():
    config = {"timeout": 60}
    assert json_object_arg("backend_config", config) is config


def test_json_object_arg_errors_name_the_argument_and_the_value():
    with pytest.raises(DataInputError, match=r"^backend_config is not valid JSON: .*: '\{timeout: 60\}'$"):
        json_object_arg("backend_config", "{timeout: 60}")
    with pytest.raises(DataInputError, match=r"^hyperparameters must be a JSON object, got list: \[1, 2\]$"):
        json_object_arg("hyperparameters", "[1, 2]")
    with pytest.raises(DataInputError, match=r"^hyperparameters must be a JSON object, got int: 5$"):
        json_object_arg("hyperparameters", 5)
    with pytest.raises(DataInputError, match=r"got NoneType"):
        json_object_arg("backend_config", "null")
