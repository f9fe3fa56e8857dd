"""The plugin's FastAPI app, mounted by the API server under ``/mlops``.

Airflow does not authenticate plugin apps: every route here depends on Airflow's own
``get_user`` (the UI's session cookie or a bearer token, as the REST API accepts them) and asks the
configured auth manager for the permission, through ``requires_access_dag`` of
``airflow.api_fastapi.core_api.security`` (the dependency Airflow's own REST routes use):

* a report: ``GET`` on the task instances of its DAG (as the task's extra links need);
* the model pages: ``GET`` on the rollback DAG (``[mlops] rollback_dag_id``, default
  ``mlops_rollback``), the DAG that acts on the registry.

The *Roll back* button does not act here: the page's script posts the DAG run to Airflow's REST
API from the user's browser, so Airflow checks that user's permission to trigger the rollback DAG
and the run carries their name, and the rollback DAG's own checks apply.

Routes (under ``/mlops``): ``GET /models``, ``GET /models/{name}``, ``GET /api/models/{name}``
(the same content as JSON), ``GET /reports/{dag_id}?run_id=&task_id=[&map_index=]``, and
``/static/*`` (the page's script and style sheet).
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.configuration import conf
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_mlops.core import tags
from airflow_mlops.exceptions import RegistryError
from airflow_mlops.plugins.reports import ReportRefused, read_report, report_roots, resolve_report
from airflow_mlops.plugins.routes import DEFAULT_ROLLBACK_DAG, SECTION, URL_PREFIX

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Our own pages: only our script and style sheet, API calls to this origin only."""
REPORT_HEADERS = {
    # The reports are self-contained HTML made from data: their scripts run in a sandbox with an
    # opaque origin, so they can neither read Airflow's pages nor call its API as the viewer, and
    # they load and send nothing over the network.
    "Content-Security-Policy": "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox "
    "allow-downloads; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-cache",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def rollback_dag_id() -> str:
    return conf.get(SECTION, "rollback_dag_id", fallback=DEFAULT_ROLLBACK_DAG) or DEFAULT_ROLLBACK_DAG


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def _ui_root(request: Request) -> str:
    """The API server's root path (``""`` at the root of the host): the mount adds ``/mlops``."""
    return str(request.scope.get("root_path", "")).removesuffix(URL_PREFIX)


def _page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    root = _ui_root(request)
    text = _templates().get_template(template).render(ui_root=root, plugin_root=root + URL_PREFIX, **values)
    return HTMLResponse(text, status_code=status, headers=PAGE_HEADERS)


def _hook() -> Any:
    from airflow_mlops.hooks.mlflow import MlflowHook

    return MlflowHook(
        mlflow_conn_id=conf.get(SECTION, "mlflow_conn_id", fallback=MlflowHook.default_conn_name)
    )


def _may_trigger(user: Any, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


def _model_view(name: str) -> dict[str, Any]:
    from airflow_mlops.exceptions import MlopsError
    from airflow_mlops.plugins.models import model_view

    hook = _hook()
    try:
        return model_view(hook.model_record(name), hook)
    except RegistryError as err:
        raise HTTPException(404, f"no model {name!r} in the registry: {err}") from None
    except MlopsError as err:
        raise HTTPException(502, str(err)) from None


def _stored_report_uri(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    """The report URI the task instance stored (read as Airflow's own XCom extra links are)."""
    from airflow.models.xcom import XComModel

    query = XComModel.get_many(
        key=tags.XCOM_REPORT_URI, run_id=run_id, dag_ids=dag_id, task_ids=task_id, map_indexes=map_index
    ).with_only_columns(XComModel.value)
    row = session.execute(query).first()
    if row is None:
        return None
    value = row[0]
    try:
        value = json.loads(value) if isinstance(value, (str, bytes)) else value
    except ValueError:
        pass
    return value if isinstance(value, str) else None


def create_app() -> FastAPI:
    app = FastAPI(title="airflow-mlops", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    models_read = Depends(requires_access_dag("GET", param_dag_id=rollback_dag_id()))

    @app.exception_handler(StarletteHTTPException)
    def _error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if request.url.path.startswith(f"{_ui_root(request)}{URL_PREFIX}/api/"):
            return JSONResponse({"detail": message}, status_code=exc.status_code, headers=PAGE_HEADERS)
        login = None
        if exc.status_code == 401:
            login = get_auth_manager().get_url_login(next_url=str(request.url))
        return _page(request, "error.html", status=exc.status_code, message=message, login=login)

    @app.get("/", include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{_ui_root(request)}{URL_PREFIX}/models")

    @app.get("/models", dependencies=[models_read])
    def models(request: Request) -> HTMLResponse:
        from airflow_mlops.exceptions import MlopsError

        hook = _hook()
        try:
            found = hook.list_models()
        except MlopsError as err:
            raise HTTPException(502, str(err)) from None
        rows = [{"name": m.name, "aliases": dict(m.aliases or {}), "description": m.description or ""}
                for m in found]  # fmt: skip
        return _page(request, "models.html", models=rows, registry=hook.registry_uri)

    @app.get("/models/{name}", dependencies=[models_read])
    def model(request: Request, name: str, user: GetUserDep) -> HTMLResponse:
        view = _model_view(name)
        dag_id = rollback_dag_id()
        return _page(
            request, "model.html", model=view, rollback_dag=dag_id, may_roll_back=_may_trigger(user, dag_id)
        )

    @app.get("/api/models/{name}", dependencies=[models_read])
    def model_json(name: str) -> JSONResponse:
        return JSONResponse(_model_view(name), headers=PAGE_HEADERS)

    @app.get(
        "/reports/{dag_id}", dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))]
    )
    def report(
        dag_id: str,
        session: SessionDep,
        run_id: Annotated[str, Query(min_length=1)],
        task_id: Annotated[str, Query(min_length=1)],
        map_index: int = -1,
    ) -> Response:
        uri = _stored_report_uri(session, dag_id, run_id, task_id, map_index)
        what = f"{dag_id}/{run_id}/{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")
        try:
            found = resolve_report(
                uri or "", report_roots(conf.get(SECTION, "report_roots", fallback="")), dag_id
            )
            data = read_report(found, conf.get(SECTION, "report_conn_id", fallback=None) or None)
        except ReportRefused as err:
            log.warning("Report of %s refused: %s", what, err)
            raise HTTPException(err.status, f"report of {what}: {err}") from None
        except OSError as err:
            raise HTTPException(502, f"report of {what}: cannot read {uri}: {err}") from None
        return Response(data, media_type=found.media_type, headers=REPORT_HEADERS)

    return app
