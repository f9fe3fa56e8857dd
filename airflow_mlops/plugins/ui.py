"""The Airflow plugin of airflow-mlops (Airflow 3.1+ plugin interfaces).

Registered by the package twice, as Airflow's own providers do: the ``airflow.plugins`` entry
point (loaded by every Airflow component) and the ``plugins`` list of the provider info (which
Airflow reads only with ``[core] lazy_discover_providers = False``).

* ``fastapi_apps``: :mod:`airflow_mlops.plugins.app` under ``/mlops`` (reports, model pages);
* ``external_views``: *Browse -> Models*, the model pages inside the Airflow UI.

Every Airflow process loads plugins, task processes included, so this module imports no web
framework: the app is built the first time the API server asks for ``fastapi_apps``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_mlops.plugins.routes import MODELS, URL_PREFIX


@cache
def _app() -> Any:
    from airflow_mlops.plugins.app import create_app

    return create_app()


class _LazyApps:
    """``fastapi_apps`` built on first access, on the class (provider path) or an instance."""

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        return [{"app": _app(), "url_prefix": URL_PREFIX, "name": "airflow-mlops"}]


class MlopsUiPlugin(AirflowPlugin):
    """Reports and model pages of airflow-mlops in the Airflow UI."""

    name = "airflow_mlops"
    fastapi_apps = _LazyApps()  # type: ignore[assignment]
    external_views = [
        {
            "name": "Models",
            "href": f"{URL_PREFIX.lstrip('/')}/{MODELS}",
            "url_route": "mlops-models",
            "destination": "nav",
            "category": "browse",
        }
    ]
