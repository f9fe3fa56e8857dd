"""Lineage of a trained model: which code, data and parameters produced it, and where it ran.

No Airflow import. ``TrainModelOperator`` writes :func:`lineage_tags` on the MLflow run and on the
registered model version (tag names in :mod:`airflow_mlops.core.tags`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from typing import Any

from airflow_mlops.core import tags

# The strictest of the services' job-name rules, SageMaker's ([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62});
# Azure ML (letters, digits, '-', '_', up to 255) and Vertex AI display names (up to 128
# characters) and Cloud Storage path segments accept every name that meets it. Stricter still here:
# a leading letter and no "--", so a name also reads well as a folder or a label.
_JOB_NAME_MAX = 63
_VALID_JOB_NAME = re.compile(r"[A-Za-z](-?[A-Za-z0-9])*")


def file_hash(path: str) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def code_version(path: str) -> str:
    """Git commit of the checkout holding ``path`` (``+dirty`` when the file has uncommitted
    changes), else ``airflow-mlops==<version>`` of the installed package."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        sha = _git(folder, "rev-parse", "HEAD")
        if sha:
            dirty = _git(folder, "status", "--porcelain", "--", os.path.abspath(path))
            return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from airflow_mlops.version import __version__

    return f"airflow-mlops=={__version__}"


def _git(cwd: str, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def job_name(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """A job name that is the same for every try of one task instance (a re-run reattaches) and
    valid on every backend: letters, digits and ``-``, at most 63 characters, starting with a
    letter. Long names keep a readable head and end in a hash of the full identity."""
    identity = f"{dag_id}/{run_id}/{task_id}" + (
        f"/{map_index}" if map_index is not None and map_index >= 0 else ""
    )
    readable = "-".join(
        p
        for p in (_slug(dag_id), _slug(task_id), _slug(run_id), str(map_index) if map_index >= 0 else "")
        if p
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    head = readable[: _JOB_NAME_MAX - len(digest) - 1].strip("-")
    name = f"{head}-{digest}"
    if not name[0].isalpha():
        name = "j" + name[: _JOB_NAME_MAX - 1]
    return name


def safe_job_name(name: str) -> str:
    """``name`` when it is valid on every backend (the rule :func:`job_name` meets), else a valid
    name made from it that ends in a hash of the original, so two names that clean up alike
    (``a_b``, ``a.b``) stay apart. Stable: the same input gives the same name."""
    if len(name) <= _JOB_NAME_MAX and _VALID_JOB_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    head = _slug(name)[: _JOB_NAME_MAX - len(digest) - 2].rstrip("-")
    if not head[:1].isalpha():
        head = "j" + head
    return f"{head}-{digest}"


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9]", "-", text)).strip("-")


def lineage_tags(
    *,
    entrypoint: str,
    code_version: str,
    code_hash: str,
    train_data: str,
    train_hash: str,
    validation_data: str | None,
    validation_hash: str | None,
    params: dict[str, Any],
    metrics: dict[str, float],
    backend: str,
    job_id: str,
    console_url: str | None,
    dag_id: str,
    run_id: str,
    task_id: str,
) -> dict[str, str]:
    """The lineage of a trained model as MLflow tags (string values; structures as JSON)."""
    out = {
        tags.ENTRYPOINT: entrypoint,
        tags.CODE_VERSION: code_version,
        tags.CODE_HASH: code_hash,
        tags.TRAIN_DATA_URI: train_data,
        tags.TRAIN_DATA_HASH: train_hash,
        tags.TARGET: str(params.get("target", "label")),
        tags.PARAMS: json.dumps(params, sort_keys=True, default=str),
        tags.METRICS: json.dumps(metrics, sort_keys=True),
        tags.BACKEND: backend,
        tags.JOB_ID: job_id,
        tags.AIRFLOW_DAG_ID: dag_id,
        tags.AIRFLOW_RUN_ID: run_id,
        tags.AIRFLOW_TASK_ID: task_id,
    }
    if validation_data:
        out[tags.VALIDATION_DATA_URI] = validation_data
        out[tags.VALIDATION_DATA_HASH] = validation_hash or ""
    if console_url:
        out[tags.JOB_CONSOLE_URL] = console_url
    return out


def read_metrics(path: str) -> dict[str, float]:
    """``metrics.json`` written by an entrypoint: a JSON object of numbers (others are dropped).

    :raises ValueError: the file is missing, not JSON, or not an object.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as err:
        raise ValueError(f"the training job wrote no metrics file at {path}") from err
    except ValueError as err:
        raise ValueError(f"metrics file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"metrics file {path} must hold a JSON object, got {type(data).__name__}")
    return {
        str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
