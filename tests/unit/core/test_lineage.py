"""Job names: stable per task instance and valid on every training service."""

from __future__ import annotations

import re

import pytest

from airflow_mlops.core.lineage import job_name, safe_job_name

# SageMaker's rule, the strictest of the three services (Azure ML: letters, digits, '-', '_', up
# to 255; Vertex AI display names: up to 128 characters), plus a leading letter.
VALID = re.compile(r"[A-Za-z](-*[A-Za-z0-9]){0,62}")


def test_job_name_is_stable_per_task_instance():
    name = job_name("my_dag", "manual__2024-01-01T00:00:00+00:00", "train")
    assert name == job_name("my_dag", "manual__2024-01-01T00:00:00+00:00", "train")
    assert name != job_name("my_dag", "manual__2024-01-01T00:00:00+00:00", "train", map_index=0)


@pytest.mark.parametrize(
    "args",
    [
        ("my_dag", "manual__2024-01-01T00:00:00+00:00", "train"),
        ("d" * 80, "scheduled__2024-01-01T00:00:00+00:00", "t" * 80),
        ("1dag", "r", "t"),
        ("__", "__", "__"),
    ],
)
def test_job_name_is_valid_everywhere(args):
    name = job_name(*args)
    assert len(name) <= 63 and VALID.fullmatch(name), name
    assert safe_job_name(name) == name  # what the backends do to it changes nothing


@pytest.mark.parametrize("name", ["churn-train-abc", "mlops-train", "a", "x" * 63])
def test_safe_job_name_keeps_a_valid_name(name):
    assert safe_job_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["mlops_dag.train/manual__2024-01-01T00:00:00+00:00", "x" * 200, "", "1dag", "a--b", "-a-", "ü"],
)
def test_safe_job_name_makes_any_name_valid_and_stable(name):
    safe = safe_job_name(name)
    assert len(safe) <= 63 and VALID.fullmatch(safe), safe
    assert safe == safe_job_name(name)


def test_names_that_clean_up_alike_stay_apart():
    assert safe_job_name("a_b") != safe_job_name("a.b")
