"""The deployment's side of the trust boundary, read from the ``[mlops]`` options of the Airflow
configuration (``airflow.cfg`` or ``AIRFLOW__MLOPS__<OPTION>`` environment variables of the
workers). A run's conf never reaches these: only whoever deploys Airflow sets them.

The rules that use them are in :mod:`airflow_mlops.core.trust`; the options are declared (with
their defaults) in ``provider_info`` and described in ``docs/security.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.data import is_local
from airflow_mlops.core.trust import (
    DEFAULT_DATA_SCHEMES,
    DEFAULT_SKOPS_TYPES,
    OPTED_IN,
    DataPolicy,
    UntrustedModel,
    confined_path,
    data_location_problem,
    is_table_file_name,
    loading_plan,
    mentions_run_input,
    parse_list,
    promotion_refusal,
    skops_refusal,
    untrusted_skops_types,
)
from airflow_mlops.exceptions import ForbiddenInputError, UnsafeModelError

if TYPE_CHECKING:
    import logging

SECTION = "mlops"


def _option(name: str, fallback: str = "") -> str:
    from airflow.providers.common.compat.sdk import conf

    return conf.get(SECTION, name, fallback=fallback) or ""


def _listed(name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    return parse_list(_option(name, ",".join(default)))


def data_policy() -> DataPolicy:
    """``[mlops] allowed_data_schemes`` and ``allowed_data_roots``."""
    return DataPolicy(
        schemes=_listed("allowed_data_schemes", DEFAULT_DATA_SCHEMES) or DEFAULT_DATA_SCHEMES,
        roots=_listed("allowed_data_roots"),
    )


def check_data_location(uri: str, what: str = "data") -> str:
    """Refuse, before anything is read, a data location the deployment does not allow
    (``[mlops] allowed_data_schemes`` / ``allowed_data_roots``), and a local file whose name does not
    say parquet or CSV unless it is parquet by its magic bytes (a ``.env`` or a key file read as a
    one-column CSV would show its first line as a column name). Called by the read entry points of
    :mod:`airflow_mlops.io`; messages name the input, never its content.

    :raises ForbiddenInputError: naming the input and the setting.
    """
    uri = str(uri)
    problem = data_location_problem(uri, data_policy())
    if problem is None and is_local(uri):
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        if os.path.isfile(path) and not is_table_file_name(path) and not _parquet_magic(path):
            problem = f"{uri!r} is not a parquet or CSV file (name it .parquet, .csv, .csv.gz or .tsv)"
    if problem is not None:
        raise ForbiddenInputError(f"{what}: not read: {problem}")
    return uri


def _parquet_magic(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


@dataclass(frozen=True)
class ApprovalPolicy:
    required: bool
    """``[mlops] require_approval``: every promotion needs a recorded approver."""
    force_users: tuple[str, ...]
    """``[mlops] force_promote_users``: users who may force a promotion without an approval."""


def approval_policy() -> ApprovalPolicy:
    return ApprovalPolicy(
        required=_option("require_approval", "False").strip().lower() in ("1", "true", "yes", "on"),
        force_users=_listed("force_promote_users"),
    )


def check_approval_args(approved_by: Any, require_approval: Any) -> None:
    """``PromoteModelOperator``'s approval arguments, checked when the DAG is parsed: the approver
    comes from the approval task, never from the run's form; the requirement is the DAG's own."""
    if mentions_run_input(approved_by):
        raise ValueError(
            "approved_by must not be templated from the run's form (params or dag_run.conf): take it "
            "from the approval task's result, e.g. "
            "\"{{ (ti.xcom_pull(task_ids='request_approval') or {}).get('responded_by_user', {}).get('name') }}\""
        )
    if not isinstance(require_approval, bool):
        raise ValueError(
            f"require_approval must be True or False in the DAG file (not a template), got {require_approval!r}"
        )


def check_approval(
    origin: Mapping[str, Any], forced: bool, approved_by: Any, require_approval: bool
) -> str | None:
    """The approver to record for a promotion, after checking that the promotion may happen.

    :param origin: who acts (``user``: the run's triggering user, as the API server recorded it).
    :return: the approver's name, or None when nobody approved (and none was needed).
    :raises ForbiddenInputError: the DAG or the deployment requires an approval, or the promotion is
        forced by a user the deployment does not let force alone, and no approver is recorded.
    """
    approver = str(approved_by).strip() if approved_by is not None else ""
    approver = "" if approver.lower() in ("", "none", "null") else approver
    policy = approval_policy()
    refusal = promotion_refusal(
        forced=forced,
        approved_by=approver or None,
        deployment_requires=require_approval or policy.required,
        user=origin.get("user"),
        force_users=policy.force_users,
    )
    if refusal:
        raise ForbiddenInputError(f"not promoting: {refusal}")
    return approver or None


@dataclass(frozen=True)
class ModelTrust:
    pickle_models: tuple[str, ...]
    """``[mlops] trusted_pickle_models``: registered models loaded with MLflow's own loader."""
    skops_types: tuple[str, ...]
    """``[mlops] trusted_skops_types``: types trusted in skops files beyond skops' defaults."""


def model_trust() -> ModelTrust:
    return ModelTrust(
        pickle_models=_listed("trusted_pickle_models"),
        skops_types=_listed("trusted_skops_types", DEFAULT_SKOPS_TYPES),
    )


def load_model_dir(model_dir: str, *, name: str, version: str, log: logging.Logger) -> tuple[Any, bool]:
    """Load the MLflow model downloaded to ``model_dir`` (version ``version`` of ``name``) the way
    :func:`airflow_mlops.core.trust.loading_plan` allows.

    :return: ``(model, keep_files)``: a pyfunc model may read its files lazily, keep them.
    :raises UnsafeModelError: the model is not in a safe format and not trusted by name, or its skops
        file holds types the deployment does not trust.
    """
    trust = model_trust()
    label = f"{name} v{version}"
    flavors = _flavors(model_dir)
    try:
        plan = loading_plan(flavors, name=name, version=version, trusted_models=trust.pickle_models)
    except UntrustedModel as err:
        raise UnsafeModelError(str(err)) from None
    if plan != OPTED_IN:
        return _load_skops(model_dir, flavors["sklearn"], label, trust.skops_types), False
    log.warning("Loading %s with MLflow's loader: [mlops] trusted_pickle_models trusts %s", label, name)
    if "sklearn" in flavors:
        import mlflow.sklearn

        with _quiet_deprecations():
            return mlflow.sklearn.load_model(model_dir), False
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_dir), True


def _load_skops(model_dir: str, flavor: Mapping[str, Any], label: str, trusted: tuple[str, ...]) -> Any:
    """The scikit-learn model of a skops-format MLflow model, loaded with the deployment's type list
    (checked first, so that a refusal names the types)."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    path = confined_path(model_dir, str(flavor.get("pickled_model") or "model.skops"))
    if path is None or not os.path.isfile(path):
        raise UnsafeModelError(f"{label}: its MLmodel names no skops file inside the model folder")
    with _quiet_deprecations():
        try:
            # skops audits the whole file against the list before it builds any object
            return skops.io.load(path, trusted=list(trusted))
        except UntrustedTypesFoundException:
            # read the file once more only to name the types
            untrusted = untrusted_skops_types(skops.io.get_untrusted_types(file=path), trusted)
            if untrusted:
                raise UnsafeModelError(skops_refusal(label, untrusted, trusted)) from None
            raise


def _flavors(model_dir: str) -> Mapping[str, Any]:
    """The ``flavors`` of the model's MLmodel file, read as YAML data only (no tags that build
    objects, so no code runs), with libyaml when PyYAML has it: a tenth of the time of
    ``mlflow.models.Model.load``, which parses the same file in pure Python."""
    import yaml

    path = os.path.join(model_dir, "MLmodel")
    if not os.path.isfile(path):
        from mlflow.models import Model

        return Model.load(model_dir).flavors  # raises MLflow's own error naming the file
    with open(path) as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    flavors = data.get("flavors") if isinstance(data, dict) else None
    return flavors if isinstance(flavors, dict) else {}


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """skops' loader walks every loaded module to resolve types, touching Airflow's deprecated
    import shims: ~1000 DeprecationWarnings that would bury the task log."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
