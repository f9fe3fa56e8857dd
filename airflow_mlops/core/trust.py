"""The trust boundary's rules: what a run's trigger form may choose, when a human must approve a
promotion, where data may be read from, and which stored models may be loaded.

Whoever can trigger a DAG is trusted with choices, not with code, identity or policy (DESIGN.md,
``docs/security.md``). The rules are pure functions here; the package enforces them where the
input is used: ``TrainModelOperator`` (backend settings from the form), ``PromoteModelOperator``
(approval), :func:`airflow_mlops.io.check_data_location` (every data read),
:meth:`MlflowHook.load_model <airflow_mlops.hooks.mlflow.MlflowHook.load_model>` (every model
load). What the deployment allows comes from ``[mlops]`` options (:mod:`airflow_mlops.trust`
reads them) and from the DAG file, never from a run's conf.

No Airflow import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlops.core.data import CSV_SUFFIXES, PARQUET_SUFFIXES

# ---------------------------------------------------------------------- the form's backend keys

NEVER_FROM_FORM = re.compile(
    r"(^|_)(conn_id|python|env|environment|environment_variables|inherit_env|image|image_uri|role|"
    r"role_arn|service_account|impersonation_chain|command|output_path|code_path|requirements|"
    r"network|subnets|security_group_ids|kms_key_id|checkpoint_s3_uri|staging_bucket|"
    r"storage_account|compute|project_id|region|region_name|framework_version|tags|labels)$"
)
"""Backend settings that choose code, identity, network or where outputs go. A backend declares
the keys a form may set (its sizing keys); any of these is refused even if a backend (or a DAG's
``allowed_overrides``) lists it."""

_SCALARS = (str, int, float, bool)
_MAX_VALUE_CHARS = 200
_RUN_INPUT = re.compile(r"\b(params|dag_run)\b")


def form_override_keys(declared: Iterable[str], narrowed: Iterable[str] | None = None) -> frozenset[str]:
    """The backend keys a run's form may set: those the backend declares, narrowed to the DAG's
    list when it has one, never a key matching :data:`NEVER_FROM_FORM`."""
    keys = frozenset(declared)
    if narrowed is not None:
        keys &= frozenset(narrowed)
    return frozenset(k for k in keys if not NEVER_FROM_FORM.search(k))


def check_overrides(overrides: Any, allowed: Collection[str], *, service: str) -> dict[str, Any]:
    """The form's backend settings, refused unless every key is allowed and every value a short
    scalar (a size, a count, a duration: nothing that carries a program or a mapping).

    :param allowed: what :func:`form_override_keys` returns for the backend.
    :param service: the backend in words (``"the SageMaker backend"``), for messages.
    :raises ValueError: naming the first forbidden key (and every allowed one), or the bad value.
    """
    if overrides is None or overrides == {}:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError(
            f"backend_overrides must be a JSON object of backend settings, got {type(overrides).__name__}"
        )
    for key in sorted(overrides, key=str):
        if key not in allowed:
            why = (
                "it chooses code, identity or where outputs go"
                if NEVER_FROM_FORM.search(str(key))
                else "the DAG does not let a run choose it"
            )
            raise ValueError(
                f"backend setting {key!r} may not come from the trigger form ({why}); a run may set "
                f"{sorted(allowed) or 'no backend setting'} for {service}. Settings that choose code, "
                "identity or outputs belong in the DAG file (backend_config / backend_configs), "
                "an Airflow Variable or a connection."
            )
        value = overrides[key]
        if not isinstance(value, _SCALARS) or (isinstance(value, str) and len(value) > _MAX_VALUE_CHARS):
            raise ValueError(
                f"backend setting {key!r} from the trigger form must be a number, a boolean or a short "
                f"string, got {type(value).__name__}"
            )
    return dict(overrides)


def mentions_run_input(value: Any) -> bool:
    """True when ``value`` (a string, or a dict/list holding strings) is a Jinja template that reads
    the run's form: ``params`` or ``dag_run`` (``dag_run.conf``)."""
    if isinstance(value, str):
        return ("{{" in value or "{%" in value) and bool(_RUN_INPUT.search(value))
    if isinstance(value, Mapping):
        return any(mentions_run_input(k) or mentions_run_input(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(mentions_run_input(v) for v in value)
    return False


# ---------------------------------------------------------------------- approval


def may_force_alone(user: str | None, force_users: Collection[str]) -> bool:
    """Whether ``user`` (the run's triggering user, as the API server recorded it) may force a
    promotion without a human approval: only a user the deployment names."""
    return bool(user) and user in force_users


def approval_required(
    *,
    deployment_requires: bool,
    form_requests: bool,
    force: bool,
    user: str | None = None,
    force_users: Collection[str] = (),
) -> tuple[bool, str]:
    """Whether a human must approve this promotion, and why.

    The deployment's requirement cannot be lowered by the run: the form may only ask for more.
    A forced promotion (over the evaluation's reject) always goes through the approval, unless
    the triggering user is one the deployment lets force alone (``[mlops] force_promote_users``).

    :return: ``(required, reason in words)``
    """
    if deployment_requires:
        return True, "the deployment requires a human approval for every promotion"
    if force and not may_force_alone(user, force_users):
        return True, "a forced promotion needs a human approval"
    if form_requests:
        return True, "the run asked for a human approval"
    if force:
        return False, f"{user} may force a promotion without an approval ([mlops] force_promote_users)"
    return False, "no approval required"


def promotion_refusal(
    *,
    forced: bool,
    approved_by: str | None,
    deployment_requires: bool,
    user: str | None = None,
    force_users: Collection[str] = (),
) -> str | None:
    """Why a promotion must not happen without its approval, or None when it may.

    What :class:`~airflow_mlops.operators.registry.PromoteModelOperator` checks right before it
    moves the alias, whatever the DAG's branches did: a DAG copied without its approval task (or
    with the deployment's requirement wired to the form) cannot promote around it.
    """
    if approved_by:
        return None
    if deployment_requires:
        return (
            "the deployment requires a human approval before every promotion ([mlops] require_approval "
            "or the DAG's require_approval=True), and none is recorded for this one (approved_by is "
            "empty): route the promotion through an ApprovalOperator and pass its responder as approved_by"
        )
    if forced and not may_force_alone(user, force_users):
        return (
            f"a forced promotion (over the evaluation's verdict) needs a human approval, and none is "
            f"recorded (approved_by is empty); the triggering user {user or '(none)'} is not in "
            "[mlops] force_promote_users"
        )
    return None


# ---------------------------------------------------------------------- data locations

DEFAULT_DATA_SCHEMES = (
    "file",
    "s3",
    "s3a",
    "gs",
    "gcs",
    "abfs",
    "abfss",
    "az",
    "adl",
    "wasb",
    "wasbs",
    "azureml",
)
"""Object stores and local files. ``http(s)``, ``ftp``, ``sftp``, ``hdfs``, ``memory``, ``github``
and every other fsspec fetcher stay off unless the deployment lists them."""

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class DataPolicy:
    """Where a task may read data from: URI schemes, and (when any) root folders or prefixes."""

    schemes: tuple[str, ...] = DEFAULT_DATA_SCHEMES
    roots: tuple[str, ...] = ()


def uri_scheme(uri: str) -> str:
    """``file`` for a local path or ``file://`` URI, else the URI's scheme, lower-cased."""
    match = _SCHEME.match(uri)
    return match["scheme"].lower() if match else "file"


def _local_path(uri: str, realpath: Callable[[str], str]) -> str:
    path = uri[len("file://") :] if uri.lower().startswith("file://") else uri
    return realpath(os.path.abspath(os.path.expanduser(path)))


def data_location_problem(
    uri: str, policy: DataPolicy, *, realpath: Callable[[str], str] = os.path.realpath
) -> str | None:
    """Why ``uri`` may not be read under ``policy``, or None when it may.

    Local paths are resolved (``..``, ``~`` and symbolic links) before they are compared with a
    root; remote URIs must not hold ``..`` segments or chain fetchers (``a::b``). The message
    names the URI and the setting, never anything read from it.
    """
    text = str(uri).strip()
    if not text:
        return "an empty data location"
    if "::" in text:
        return f"{text!r} chains fsspec protocols ('::'); give one plain location"
    scheme = uri_scheme(text)
    if scheme not in {s.lower() for s in policy.schemes}:
        return (
            f"{text!r} uses the {scheme}:// scheme, which this deployment does not read data from "
            f"(allowed: {', '.join(policy.schemes)}; [mlops] allowed_data_schemes)"
        )
    if not policy.roots:
        return None
    if scheme == "file":
        path = _local_path(text, realpath)
        for root in policy.roots:
            if uri_scheme(root) != "file":
                continue
            base = _local_path(root, realpath)
            if path == base or path.startswith(base.rstrip(os.sep) + os.sep):
                return None
    else:
        rest = text.split("://", 1)[1].split("?", 1)[0]
        if any(part in ("..", ".") for part in rest.split("/")):
            return f"{text!r} holds a '..' or '.' path segment"
        lowered = f"{scheme}://{rest}"
        for root in policy.roots:
            if uri_scheme(root) != scheme:
                continue
            base = f"{scheme}://{root.split('://', 1)[1]}".rstrip("/")
            if lowered == base or lowered.startswith(base + "/"):
                return None
    return (
        f"{text!r} is outside the folders this deployment reads data from "
        f"({', '.join(policy.roots)}; [mlops] allowed_data_roots)"
    )


def is_table_file_name(name: str) -> bool:
    """Whether a file's name says it is a table this package reads (parquet or CSV)."""
    return name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)


# ---------------------------------------------------------------------- model loading

DEFAULT_SKOPS_TYPES = ("numpy.dtype", "sklearn.tree._tree.Tree")
"""Types beyond skops' own defaults that the reference entrypoint's models hold (random forests,
gradient boosting, logistic regression in a preprocessing Pipeline)."""

SKOPS = "skops"
OPTED_IN = "opted-in"


class UntrustedModel(ValueError):
    """A stored model that cannot be loaded without running code the deployment did not vet."""


def _reregister(label: str, name: str) -> str:
    return (
        f"Re-register {label} in the skops format (mlflow.sklearn.log_model(model, ..., "
        "serialization_format='skops'), as the reference entrypoint include/training/train.py "
        f"does), or, if you trust everyone who can register versions of {name!r}, list it in "
        "[mlops] trusted_pickle_models."
    )


def loading_plan(
    flavors: Mapping[str, Any], *, name: str, version: str, trusted_models: Collection[str]
) -> str:
    """How the model version with these MLmodel ``flavors`` may be loaded.

    :return: :data:`SKOPS` (a scikit-learn model stored with skops: load it with the deployment's
        type list) or :data:`OPTED_IN` (the deployment trusts this model by name: MLflow's own
        loader, pickles included).
    :raises UntrustedModel: anything else (pickle or cloudpickle scikit-learn models, pyfunc
        ``python_model`` code, other flavours), with how to re-register it.
    """
    label = f"{name} v{version}"
    if name in trusted_models:
        return OPTED_IN
    sklearn = flavors.get("sklearn")
    if isinstance(sklearn, Mapping):
        fmt = str(sklearn.get("serialization_format") or "pickle")
        if fmt == SKOPS:
            return SKOPS
        raise UntrustedModel(
            f"{label} is a scikit-learn model stored as {fmt}, and loading a {fmt} file runs whatever "
            f"code it holds: it is not loaded. {_reregister(label, name)}"
        )
    pyfunc = flavors.get("python_function")
    if isinstance(pyfunc, Mapping) and (pyfunc.get("python_model") or pyfunc.get("cloudpickle_version")):
        raise UntrustedModel(
            f"{label} is a pyfunc PythonModel (cloudpickled Python code): loading it runs that code, so it "
            f"is not loaded. {_reregister(label, name)}"
        )
    raise UntrustedModel(
        f"{label} has no scikit-learn flavour stored with skops (flavours: {sorted(flavors) or 'none'}); "
        f"airflow-mlops loads only formats that cannot run code on load. {_reregister(label, name)}"
    )


def untrusted_skops_types(found: Iterable[str], trusted: Collection[str]) -> list[str]:
    """The types a skops file holds beyond skops' defaults that the deployment does not trust."""
    return sorted(set(found) - set(trusted))


def skops_refusal(label: str, untrusted: list[str], trusted: Collection[str]) -> str:
    return (
        f"{label} (skops) holds types this deployment does not trust: {untrusted}; trusted beyond "
        f"skops' defaults: {sorted(trusted)} ([mlops] trusted_skops_types). The list recorded in the "
        "model's own MLmodel file is not used: whoever registers a version would choose it. Add the "
        "types to [mlops] trusted_skops_types if you vetted them."
    )


def confined_path(root: str, relative: str) -> str | None:
    """``root/relative`` resolved, or None when it leaves ``root`` (an MLmodel naming
    ``../../elsewhere`` as its model file)."""
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, relative))
    return path if path.startswith(base.rstrip(os.sep) + os.sep) else None


# ---------------------------------------------------------------------- a run's conf, whole


NEVER_FROM_DEPLOY_FORM = re.compile(
    r"(^|_)(target|target_config|targets|endpoint|endpoint_name|endpoint_id|variant|variants|"
    r"deployment|deployment_name|identity|credential|credentials|instance_type|model_data_prefix|"
    r"predictions|id_column|outcomes|alarms|metric|min_samples|alpha|tolerance|canary_alias|"
    r"champion_alias|model_name)$"
)
"""Deployment settings a run's conf may never set: where the model serves and as whom, where
predictions and outcomes are, and the analysis's policy (``mlops_deploy``'s form offers the plan's
steps, bake time, an approval, an abort and a reason; the rest is the DAG file's)."""


def conf_refusal(conf: Mapping[str, Any] | None, allowed: Collection[str], *, dag: str) -> str | None:
    """Why a run's conf is refused, or None: every key must be one of the form's ``allowed``
    params (Airflow validates the declared params' values but passes undeclared keys through).

    :param dag: the DAG's id, for the message.
    """
    for key in sorted(conf or {}, key=str):
        if key in allowed:
            continue
        chooses = NEVER_FROM_DEPLOY_FORM.search(str(key)) or NEVER_FROM_FORM.search(str(key))
        why = (
            "it chooses a target, an endpoint, an identity, an output or the policy"
            if chooses
            else f"{dag}'s form has no such setting"
        )
        return (
            f"conf key {key!r} may not come from the trigger form ({why}); a run of {dag} may set "
            f"{sorted(allowed)}. Targets, endpoints, identities and the analysis policy are set in the "
            "DAG file (or the environment variables it reads)."
        )
    return None


# ---------------------------------------------------------------------- settings as text


def parse_list(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """A setting's list: comma- or newline-separated text (``[mlops]`` options) or an iterable;
    blanks dropped, order kept."""
    if text is None:
        return ()
    items = re.split(r"[,\n]", text) if isinstance(text, str) else list(text)
    return tuple(dict.fromkeys(s.strip() for s in map(str, items) if s.strip()))
