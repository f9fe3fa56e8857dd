"""OpenLineage dataset names for what airflow-mlops reads and writes. Standard library only.

Data follows the OpenLineage naming spec (https://openlineage.io/docs/spec/naming): the namespace
is the data source (``scheme://authority``), the name the path inside it. Models are named the way
MLflow addresses them (``models:/<name>/<version>``, ``models:/<name>@<alias>``) inside the
namespace of the registry that holds them.

Names never carry credentials: user info, query strings and fragments are dropped, since a URI
may hold a password, a SAS token or a signed-URL signature.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

# scheme as written -> scheme of the OpenLineage namespace
_SCHEMES = {
    "s3a": "s3",
    "s3n": "s3",
    "gcs": "gs",
    "postgresql": "postgres",
    "abfs": "abfss",
    "wasb": "wasbs",
}
# Azure storage: the authority is ``<container>@<account host>``, so its '@' is not user info
_AZURE = ("abfs", "abfss", "wasb", "wasbs")


def dataset_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a data URI, by the OpenLineage naming spec.

    - a local path or ``file://path``: ``("file", "/absolute/path")`` (a relative path is made
      absolute against the working directory, as the data is read);
    - ``s3://bucket/key`` (also ``s3a``, ``s3n``): ``("s3://bucket", "key")``; ``gs://`` and
      ``gcs://`` alike with ``gs://bucket``;
    - ``abfs[s]://container@account.dfs.core.windows.net/path``:
      ``("abfss://container@account.dfs.core.windows.net", "path")``; ``wasb[s]`` alike;
    - any other ``scheme://host[:port]/path`` (``hdfs``, ``postgres`` ...):
      ``("scheme://host[:port]", "path")``.

    A folder's trailing ``/`` is dropped; an empty name is ``/``.
    """
    uri = uri.strip()
    if uri.startswith("file://"):
        uri = uri[len("file://") :]  # how the package reads it (airflow_mlops.core.data)
    if "://" not in uri:
        return "file", os.path.abspath(uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    path = parts.path.rstrip("/")
    authority = parts.netloc if scheme in _AZURE else _host(parts.netloc)
    if scheme in _AZURE and "@" not in authority:
        scheme_out = scheme  # adlfs' short form (account in the connection): not the spec's namespace
    else:
        scheme_out = _SCHEMES.get(scheme, scheme)
    return f"{scheme_out}://{authority}", path.lstrip("/") or "/"


def registry_namespace(uri: str) -> str:
    """The namespace of an MLflow registry: its URI without credentials, query or fragment.

    ``http://user:token@mlflow:5000/`` gives ``http://mlflow:5000``; ``sqlite:////srv/mlflow.db``
    stays as it is; ``databricks-uc`` too.
    """
    uri = uri.strip()
    if "://" not in uri:
        return uri.split("?", 1)[0].split("#", 1)[0]
    parts = urlsplit(uri)
    return f"{parts.scheme.lower()}://{_host(parts.netloc)}{parts.path.rstrip('/')}"


def model_version_name(model_name: str, version: str | int) -> str:
    """``models/<name>/<version>``: a registered model version (MLflow's ``models:/<name>/<version>``)."""
    return f"models/{model_name}/{version}"


def model_alias_name(model_name: str, alias: str) -> str:
    """``models/<name>@<alias>``: a registered model's alias (MLflow's ``models:/<name>@<alias>``)."""
    return f"models/{model_name}@{alias}"


def _host(netloc: str) -> str:
    """``host[:port]`` of an authority, without user info."""
    return netloc.rpartition("@")[2].lower()
