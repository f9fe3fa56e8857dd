"""MLflow hook: where the tracking server and the registry are, and every call made to them.

Operators and sensors sequence these methods; they never hold an ``MlflowClient`` themselves.
The alias protocol (lock, compare-and-set, history) lives in :mod:`airflow_mlops.core.registry`
and is driven with the client from :meth:`MlflowHook.session`. Every MLflow error leaves this
module as one of two exceptions: :class:`~airflow_mlops.exceptions.RegistryError` when the
request itself is wrong (no such model, version or alias; an invalid value: a retry cannot help),
:class:`~airflow_mlops.exceptions.MlopsError` when the server failed or is unreachable (retried).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook

from airflow_mlops.core.registry import is_not_found
from airflow_mlops.exceptions import MlopsError, PromotionConflict, RegistryError
from airflow_mlops.hooks.mlflow_runs import RunLogging

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from airflow_mlops.core.registry import AliasMove, HistoryEvent

MODELS_SCHEME = "models:/"
_MODEL_REF = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))?$")
# MLflow refuses these codes for the request itself; anything else is the server's problem.
_REQUEST_ERRORS = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/<name>@<alias>``, ``models:/<name>/<version>`` or ``models:/<name>`` ->
    ``(name, alias, version)``.

    :raises ValueError: naming the reference when it is not one of these forms.
    """
    match = _MODEL_REF.match(str(uri).strip())
    if not match:
        raise ValueError(
            f"{uri!r} is not a model reference like models:/<name>@<alias> or models:/<name>/<version>"
        )
    return match["name"], match["alias"], match["version"]


@dataclass(frozen=True)
class ModelRecord:
    """What :meth:`MlflowHook.model_record` read: MLflow's entities and the parsed history."""

    model: RegisteredModel
    versions: list[ModelVersion]
    history: dict[str, list[HistoryEvent]]


# MLflow reads credentials from the environment at request time; a session sets them for the
# duration of a block and restores what was there. One session at a time per process.
_ENV_LOCK = threading.RLock()
_SESSION_VARS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)


def embedded_tracking_uri() -> str:
    """The embedded default store: ``sqlite:///$AIRFLOW_HOME/mlflow.db``."""
    return "sqlite:///" + os.path.join(_airflow_home(), "mlflow.db")


def embedded_artifact_root() -> str:
    return os.path.join(_airflow_home(), "mlartifacts")


def _airflow_home() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")))


class MlflowHook(RunLogging, BaseHook):
    """
    Interact with an MLflow tracking server and model registry.

    Resolution of the tracking URI, in order: the connection's host (``http://host:port`` is
    built from host and port when the host has no scheme), ``MLFLOW_TRACKING_URI``, and the
    embedded default ``sqlite:///$AIRFLOW_HOME/mlflow.db`` with artefacts beside it. A missing
    ``mlflow_default`` connection falls back silently; any other missing connection id is an
    error.

    :param mlflow_conn_id: connection of type ``mlflow``; extras ``registry_uri``, ``token``,
        ``ui_url``; login/password for basic auth.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str | None = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def _connection(self) -> Any | None:
        if not self.mlflow_conn_id:
            return None
        try:
            return self.get_connection(self.mlflow_conn_id)
        except Exception as err:
            if self.mlflow_conn_id == self.default_conn_name and _is_missing_connection(err):
                return None
            raise

    def _extra(self, key: str) -> Any:
        conn = self._connection
        return conn.extra_dejson.get(key) if conn is not None else None

    @cached_property
    def tracking_uri(self) -> str:
        conn = self._connection
        if conn is not None and conn.host:
            host = conn.host.rstrip("/")
            if "://" in host or host.startswith(("databricks", "sqlite")):
                return host
            port = f":{conn.port}" if conn.port else ""
            return f"http://{host}{port}"
        return os.environ.get("MLFLOW_TRACKING_URI") or embedded_tracking_uri()

    @cached_property
    def registry_uri(self) -> str:
        return self._extra("registry_uri") or os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri

    @property
    def is_embedded(self) -> bool:
        return self.tracking_uri.startswith("sqlite:") or self.tracking_uri.startswith("file:")

    @cached_property
    def ui_base_url(self) -> str | None:
        """Base URL of the MLflow UI, or None when there is none to link to."""
        url = self._extra("ui_url") or os.environ.get("MLFLOW_UI_URL")
        if not url and self.tracking_uri.startswith(("http://", "https://")):
            url = self.tracking_uri
        return url.rstrip("/") if url else None

    def _credentials(self) -> dict[str, str]:
        conn = self._connection
        creds: dict[str, str] = {}
        if conn is None:
            return creds
        token = self._extra("token")
        if token:
            creds["MLFLOW_TRACKING_TOKEN"] = token
        elif conn.login:
            creds["MLFLOW_TRACKING_USERNAME"] = conn.login
            creds["MLFLOW_TRACKING_PASSWORD"] = conn.password or ""
        return creds

    def get_conn(self) -> MlflowClient:
        """An ``MlflowClient`` bound to this connection's tracking and registry URIs.

        With credentials on the connection, call it inside :meth:`session` so requests carry them.
        """
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    @contextmanager
    def session(self) -> Iterator[MlflowClient]:
        """Yield a client with URIs and credentials in effect for MLflow's fluent API too.

        Environment variables are restored on exit: credentials never outlive the block.
        """
        import mlflow

        values = {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_REGISTRY_URI": self.registry_uri}
        values.update(self._credentials())
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in _SESSION_VARS}
            # The URIs explicitly set in this process (None when unset). mlflow.get_tracking_uri()
            # would return a resolved default, and setting that back would leak it into the
            # environment (set_tracking_uri exports MLFLOW_TRACKING_URI for subprocesses).
            previous_uri, previous_registry = _explicit_fluent_uris()
            try:
                for key in _SESSION_VARS:
                    if key in values:
                        os.environ[key] = values[key]
                    else:
                        os.environ.pop(key, None)
                mlflow.set_tracking_uri(self.tracking_uri)
                mlflow.set_registry_uri(self.registry_uri)
                yield self.get_conn()
            finally:
                mlflow.set_tracking_uri(previous_uri)
                mlflow.set_registry_uri(previous_registry)
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def get_or_create_experiment(self, name: str) -> str:
        """Experiment id for ``name``; on the embedded store its artefacts live under AIRFLOW_HOME."""
        client = self.get_conn()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.is_embedded:
            location = "file://" + os.path.join(embedded_artifact_root(), name.strip("/").replace("/", "_"))
        try:
            return client.create_experiment(name, artifact_location=location)
        except Exception:
            # another task created it in the meantime
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def model_version_url(self, name: str, version: str | int) -> str | None:
        if not self.ui_base_url:
            return None
        return f"{self.ui_base_url}/#/models/{quote(name, safe='')}/versions/{version}"

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        if not self.ui_base_url:
            return None
        return f"{self.ui_base_url}/#/experiments/{experiment_id}/runs/{run_id}"

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Map MLflow failures inside the block to this package's exceptions, naming ``doing``.

        The one error mapping of the package: a request MLflow refuses (no such model, version or
        alias; an invalid value) is a :class:`RegistryError` (a retry cannot help); a server error
        or an unreachable server is an :class:`MlopsError` (retried by Airflow).
        """
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as err:
            if getattr(err, "error_code", "") in _REQUEST_ERRORS:
                raise RegistryError(f"{doing}: {err.message}") from err
            raise MlopsError(f"MLflow at {self.tracking_uri} failed while {doing}: {err.message}") from err
        except OSError as err:  # requests' ConnectionError is an OSError
            raise MlopsError(f"MLflow at {self.tracking_uri} is unreachable while {doing}: {err}") from err

    def get_model_version(
        self,
        name: str,
        *,
        alias: str | None = None,
        version: str | int | None = None,
        missing_ok: bool = False,
    ) -> ModelVersion | None:
        """The model version ``name@alias`` or ``name`` v``version`` (exactly one of the two).

        :param missing_ok: return None, instead of raising, when the model, version or alias does
            not exist (e.g. "no champion yet").
        :raises RegistryError: it does not exist (unless ``missing_ok``), or the version is not a
            version number.
        :raises MlopsError: MLflow failed or is unreachable.
        """
        from mlflow.exceptions import MlflowException

        if (alias is None) == (version is None):
            raise ValueError("get_model_version takes exactly one of alias and version")
        what = f"{name}@{alias}" if alias is not None else f"{name} v{version}"
        with (
            self.errors(f"looking up {what} in the registry at {self.registry_uri}"),
            self.session() as client,
        ):
            try:
                if alias is not None:
                    return client.get_model_version_by_alias(name, alias)
                return client.get_model_version(name, str(version))
            except MlflowException as err:
                if missing_ok and is_not_found(err):
                    return None
                raise

    def set_version_tags(self, name: str, version: str | int, tags: Mapping[str, str]) -> None:
        """Write ``tags`` on a model version (values are strings)."""
        with self.errors(f"tagging {name} v{version}"), self.session() as client:
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), key, value)

    def promote(self, name: str, version: str | int, **kwargs: Any) -> AliasMove:
        """Move ``name@alias`` to ``version`` with the registry protocol
        (:func:`airflow_mlops.core.registry.promote`; keyword arguments as there).

        :raises PromotionConflict: the alias is not where ``expected_current`` says, or a writer
            that ignores the lock moved it (no retry: the decision to promote is stale).
        :raises RegistryError: an invalid setting (named in the message), no such model or
            version, or a model in the lock's place that is not a lock (no retry).
        :raises MlopsError: MLflow failed or is unreachable, or the lock stayed taken for
            ``lock_timeout``: retried, and the retry completes or undoes what this try started.
        """
        from airflow_mlops.core import registry

        return self._move(
            registry.promote,
            name,
            f"moving @{kwargs.get('alias', 'champion')} of {name} to v{version}",
            version,
            **kwargs,
        )

    def rollback(self, name: str, **kwargs: Any) -> AliasMove:
        """Move ``name@alias`` back along its history
        (:func:`airflow_mlops.core.registry.rollback`; keyword arguments as there); errors as
        :meth:`promote`, and :class:`RegistryError` when there is nothing to roll back to."""
        from airflow_mlops.core import registry

        return self._move(
            registry.rollback, name, f"rolling back @{kwargs.get('alias', 'champion')} of {name}", **kwargs
        )

    def _move(
        self, fn: Callable[..., AliasMove], name: str, doing: str, *args: Any, **kwargs: Any
    ) -> AliasMove:
        from airflow_mlops.core.registry import RegistryBusy, RegistryConflict, RegistryStateError

        try:
            with self.errors(doing), self.session() as client:
                return fn(client, name, *args, **kwargs)
        except RegistryConflict as err:
            raise PromotionConflict(str(err)) from err
        except RegistryStateError as err:  # RegistryInputError too: a setting is invalid
            raise RegistryError(str(err)) from err
        except RegistryBusy as err:
            raise MlopsError(f"{doing}: {err}") from err

    def rollout(self, action: str, name: str, **kwargs: Any) -> Any:
        """Move the canary rollout of ``name``: ``action`` is ``start``, ``step``, ``complete``,
        ``abort`` or ``sync`` of :mod:`airflow_mlops.core.registry.rollout` (keyword arguments as
        there); errors as :meth:`promote`."""
        from airflow_mlops.core.registry import rollout

        fn = {"start": rollout.start, "step": rollout.step, "complete": rollout.complete}.get(action)
        fn = fn or {"abort": rollout.abort, "sync": rollout.sync}[action]
        return self._move(fn, name, f"{action} of the canary rollout of {name}", **kwargs)

    def rollout_state(self, name: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The canary rollout of ``name`` as the registry records it (read only).

        :param missing_ok: return None, instead of raising, when ``name`` is not registered at all
            (nothing was trained yet).
        """
        from airflow_mlops.core.registry import rollout

        try:
            return self._move(rollout.rollout_state, name, f"reading the canary rollout of {name}", **kwargs)
        except RegistryError as err:
            if missing_ok and err.__cause__ is not None and is_not_found(err.__cause__):
                return None
            raise

    def download_model(self, name: str, version: str | int, dst_path: str) -> str:
        """Download the MLflow model directory of ``name`` v``version`` into ``dst_path`` (for a
        deployment target that ships it); return its local path."""
        import mlflow

        with self.errors(f"downloading {name} v{version}"), self.session() as client:
            source = client.get_model_version_download_uri(name, str(version))
            return mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=dst_path, tracking_uri=self.tracking_uri
            )

    def list_models(self, max_results: int = 1000) -> list[RegisteredModel]:
        """Read-only: the registered models by name, without the registry's own lock models."""
        from airflow_mlops.core.registry import LOCK_SUFFIX

        with self.errors(f"listing the models in the registry at {self.registry_uri}"), self.session() as c:
            models = c.search_registered_models(max_results=max_results)
        return sorted((m for m in models if LOCK_SUFFIX not in m.name), key=lambda m: m.name)

    def model_record(self, name: str, aliases: tuple[str, ...] = ("champion",)) -> ModelRecord:
        """Read-only: a registered model, all its versions (tags and aliases included, newest
        first), and the history of each of its aliases and ``aliases`` as
        :func:`airflow_mlops.core.registry.parse_history` reads it (oldest first).

        :raises RegistryError: no such model (or a name MLflow cannot search for).
        """
        from airflow_mlops.core.registry import parse_history

        if "'" in name:
            raise RegistryError(f"model name {name!r}: quotes are not supported in a registry search")
        with self.errors(f"reading {name} from the registry at {self.registry_uri}"), self.session() as c:
            model = c.get_registered_model(name)
            versions = c.search_model_versions(f"name='{name}'")
        versions = sorted(versions, key=lambda v: int(v.version), reverse=True)
        wanted = dict.fromkeys([*(model.aliases or {}), *aliases])
        history = {alias: parse_history(dict(model.tags or {}), alias) for alias in wanted}
        return ModelRecord(model=model, versions=versions, history=history)

    def load_model(self, name: str, version: str | int, dst_path: str | None = None) -> Any:
        """Download version ``version`` of ``name`` through this connection and load it, only in a
        format whose loading cannot run code (:func:`airflow_mlops.trust.load_model_dir`).

        A scikit-learn model stored with skops is loaded with skops and the deployment's list of
        trusted types (``[mlops] trusted_skops_types``; the list in the model's own MLmodel file is
        ignored: whoever registers a version would write it). Anything else (pickle or cloudpickle
        scikit-learn models, pyfunc ``PythonModel`` code, other flavours) is refused with how to
        re-register it, unless the deployment trusts this registered model by name
        (``[mlops] trusted_pickle_models``): then MLflow's own loader runs, the scikit-learn flavour
        when there is one (so ``predict_proba`` and ``classes_`` are available), else pyfunc.

        :param dst_path: where to download the artefacts (default: a temporary folder, removed
            after loading a scikit-learn model and kept for a pyfunc one, which may read its
            files lazily). Without it, a version whose artefacts are already on this machine (a
            local artifact store, the embedded default) is read where it is, as MLflow's own
            ``download_artifacts`` does: nothing is copied, nothing is removed.
        :raises UnsafeModelError: the version is not in a safe format and not trusted by name.
        """
        import shutil

        import mlflow

        from airflow_mlops.trust import load_model_dir

        target, keep = None, False
        try:
            with self.session() as client:
                source = client.get_model_version_download_uri(name, str(version))
                local = None if dst_path else _local_dir(source)
                if local is None:
                    target = dst_path or tempfile.mkdtemp(prefix="mlops-model-")
                    local = mlflow.artifacts.download_artifacts(
                        artifact_uri=source, dst_path=target, tracking_uri=self.tracking_uri
                    )
            model, keep = load_model_dir(local, name=name, version=str(version), log=self.log)
            return model
        finally:
            if target is not None and dst_path is None and not keep:
                shutil.rmtree(target, ignore_errors=True)

    def test_connection(self) -> tuple[bool, str]:
        """Used by the Test button of the connection form."""
        try:
            with self.session() as client:
                client.search_experiments(max_results=1)
                client.search_registered_models(max_results=1)
        except Exception as err:
            return False, f"Cannot reach MLflow at {self.tracking_uri}: {type(err).__name__}: {err}"
        return True, f"Connected to MLflow at {self.tracking_uri} (registry {self.registry_uri})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form, as declared once in ``provider_info``."""
        from airflow_mlops.provider_info import ui_field_behaviour

        return ui_field_behaviour(cls.conn_type)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields on Airflow 3.1, from the ``conn-fields`` of ``provider_info``."""
        from airflow_mlops.hooks.forms import connection_form_widgets

        return connection_form_widgets(cls.conn_type)


def _explicit_fluent_uris() -> tuple[str | None, str | None]:
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None)


def _is_missing_connection(err: Exception) -> bool:
    name = type(err).__name__
    return name in ("AirflowNotFoundException", "ConnectionNotFound") or "isn't defined" in str(err)


def _local_dir(uri: str) -> str | None:
    """The folder ``uri`` names when it is a folder on this machine (a plain path or ``file://``),
    else None (a remote store, or a ``models:/`` URI MLflow resolves)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        path = url2pathname(parsed.path)
    elif parsed.scheme == "":
        path = uri
    else:
        return None
    return path if os.path.isdir(path) else None
