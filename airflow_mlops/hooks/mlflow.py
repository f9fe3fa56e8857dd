"""MLflow hook: one place that knows where the tracking server and the registry are."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

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


class MlflowHook(BaseHook):
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
            if self.mlflow_conn_id == self.default_conn_name and _is_not_found(err):
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

    def get_alias_version(self, name: str, alias: str) -> ModelVersion | None:
        """The model version holding ``alias`` of ``name``; None when the alias (or model) does not exist."""
        from mlflow.exceptions import MlflowException

        with self.session() as client:
            try:
                return client.get_model_version_by_alias(name, alias)
            except MlflowException as err:
                code = getattr(err, "error_code", "")
                text = str(err).lower()
                if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE") and (
                    "not found" in text or "does not exist" in text
                ):
                    return None
                raise

    def load_model(self, name: str, version: str | int, dst_path: str | None = None) -> Any:
        """Download version ``version`` of ``name`` through this connection and load it.

        Loads the scikit-learn flavour when the model has one (so ``predict_proba`` and
        ``classes_`` are available), else the generic pyfunc flavour.

        :param dst_path: where to download the artefacts (default: a temporary folder, removed
            after loading a scikit-learn model and kept for a pyfunc one, which may read its
            files lazily).
        """
        import shutil
        import tempfile
        import warnings

        import mlflow
        from mlflow.models import Model

        target = dst_path or tempfile.mkdtemp(prefix="mlops-model-")
        with self.session() as client:
            source = client.get_model_version_download_uri(name, str(version))
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=target, tracking_uri=self.tracking_uri
            )
        if "sklearn" in Model.load(local).flavors:
            import mlflow.sklearn

            try:
                # skops' safe loader walks every loaded module to resolve types, touching Airflow's
                # deprecated import shims: ~1000 DeprecationWarnings that would bury the task log.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return mlflow.sklearn.load_model(local)
            finally:
                if dst_path is None:
                    shutil.rmtree(target, ignore_errors=True)
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(local)

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
        from airflow_mlops.provider_info import get_provider_info

        for conn_type in get_provider_info()["connection-types"]:
            if conn_type["connection-type"] == cls.conn_type:
                return conn_type["ui-field-behaviour"]
        return {}


def _explicit_fluent_uris() -> tuple[str | None, str | None]:
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None)


def _is_not_found(err: Exception) -> bool:
    name = type(err).__name__
    return name in ("AirflowNotFoundException", "ConnectionNotFound") or "isn't defined" in str(err)
