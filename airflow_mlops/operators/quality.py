"""Data-quality gate: stop faulty training data with a Great Expectations 1.x suite."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.core import tags
from airflow_mlops.core.engines.uri import check_engine, parse_data_uri
from airflow_mlops.core.quality import (
    RESULT_FORMATS,
    SEVERITIES,
    FailOn,
    MissingColumnError,
    Suite,
    SuiteError,
    compile_suite,
    failure_message,
    find_suite_file,
    load_suite,
    parse_fail_on,
    render_html,
    summary_metrics,
    validate_frame,
    validate_source,
)
from airflow_mlops.exceptions import DataInputError, DataQualityGateFailed
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.io import (
    choose_engine,
    default_report_dir,
    engine_session,
    load_table,
    open_data,
    parse_data,
    write_report,
)
from airflow_mlops.links.mlflow import MlflowRunLink, MlopsReportLink
from airflow_mlops.templating import is_templated

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

REPORT_HTML = "validation.html"
REPORT_JSON = "validation.json"


class DataQualityGateOperator(BaseOperator):
    """
    Validate a table against a Great Expectations suite and fail the task on bad data.

    Each expectation has a severity (``critical`` by default, ``warning`` or ``info``, GX 1.x's
    own ``severity`` field or ``meta.severity``). Failures at or above ``fail_on`` fail the task
    with :class:`~airflow_mlops.exceptions.DataQualityGateFailed` (no retries: bad data does not
    fix itself) whose message lists each failed expectation with its column, what was expected
    and what was observed; lesser failures are logged as warnings and returned. The summary goes
    to XCom in both cases, before the exception. An HTML report and the full validation result
    (JSON) are written to ``report_dir`` and, with ``mlflow_conn_id``, logged as artefacts of an
    MLflow run.

    Returns (XCom ``return_value``)::

        {success, fail_on, evaluated, failed: [{expectation, column, observed, expected, severity,
         blocking, message, position}], statistics, data, suite, report_uri, result_uri,
         mlflow_run_id}

    ``success`` is the gate's verdict (no failure at or above ``fail_on``).

    :param data: local path, ``file://`` or object-storage URI (``s3://``, ``gs://``, ``abfs://``)
        of a parquet or CSV file or a folder of parts, or a table or query through an Airflow
        connection: ``sql://<conn_id>/<schema.table>``, ``sql://<conn_id>?query=SELECT...``,
        ``spark://<conn_id>/<table>``. Templated; read only at execute time.
    :param suite: path of a GX suite JSON or YAML file (relative paths are looked up in the
        working directory, beside the DAG file and in the DAG's ``template_searchpath``), or a
        list of expectation dicts ``{"type", "kwargs", "severity"}``. Templated.
    :param fail_on: ``"critical"`` (default), ``"warning"`` or ``"any"``: the least severity that
        fails the task. Templated.
    :param result_format: GX result format: ``BOOLEAN_ONLY``, ``BASIC``, ``SUMMARY`` (default) or
        ``COMPLETE`` (or a GX result-format dict).
    :param report_dir: where to write ``validation.html`` and ``validation.json`` (local path or
        fsspec URL). Default ``$AIRFLOW_HOME/reports/quality/<dag_id>/<run_id>/<task_id>/``.
        Templated.
    :param mlflow_conn_id: when set, log the report and result as artefacts of a run in
        ``mlflow_experiment``, tagged with the DAG, run and task ids.
    :param mlflow_experiment: MLflow experiment for those runs (default ``data-quality``).
    :param data_conn_id: Airflow connection with credentials for an object-storage ``data`` URI.
    :param engine: where a file ``data`` is validated: ``"auto"`` (default: DuckDB on the worker
        for parquet data above ``[mlops] duckdb_auto_rows`` rows, else pandas), ``"pandas"`` or
        ``"duckdb"``. Tables are validated by their engine (GX's SQL or Spark datasource): the
        expectations run as the engine's queries, nothing is loaded into the worker. Templated.
    """

    template_fields: Sequence[str] = ("data", "suite", "fail_on", "report_dir", "engine")
    template_fields_renderers = {"suite": "json"}
    ui_color = "#f4e4c1"
    operator_extra_links = (MlopsReportLink(), MlflowRunLink())

    def __init__(
        self,
        *,
        data: str,
        suite: str | Sequence[Mapping[str, Any]],
        fail_on: str = "critical",
        result_format: str | dict = "SUMMARY",
        report_dir: str | None = None,
        mlflow_conn_id: str | None = None,
        mlflow_experiment: str = "data-quality",
        data_conn_id: str | None = None,
        engine: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not data:
            raise ValueError("data must be a path or URI of the table to validate")
        if isinstance(data, str) and not is_templated(data):
            parse_data_uri(data, "data")
        if not is_templated(engine):
            engine = check_engine(engine)
        if not suite:
            raise ValueError("suite must be a suite file path or a non-empty list of expectation dicts")
        if not isinstance(suite, (str, os.PathLike, list, tuple)):
            raise ValueError(
                f"suite must be a file path or a list of expectation dicts, got {type(suite).__name__}"
            )
        if isinstance(result_format, str) and result_format.upper() not in RESULT_FORMATS:
            raise ValueError(
                f"result_format must be one of {', '.join(RESULT_FORMATS)}, got {result_format!r}"
            )
        # fail_on is checked once, where its value is known: a literal here (ValueError at parse
        # time), a templated one in execute once rendered (DataInputError).
        self._fail_on_templated = is_templated(fail_on)
        self.data = data
        self.suite = suite
        self.fail_on = fail_on if self._fail_on_templated else parse_fail_on(fail_on)
        self.result_format = result_format.upper() if isinstance(result_format, str) else result_format
        self.report_dir = report_dir
        self.mlflow_conn_id = mlflow_conn_id
        self.mlflow_experiment = mlflow_experiment
        self.data_conn_id = data_conn_id
        self.engine = engine

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        fail_on = self._checked_fail_on()
        data = str(self.data)

        # The suite first: a broken suite is reported before any data is read.
        suite = self._load_suite(context)
        self.log.info(
            "Suite %s: %d expectations (%s)",
            suite.source,
            len(suite.expectations),
            ", ".join(f"{s}: {sum(e.severity == s for e in suite.expectations)}" for s in SEVERITIES),
        )
        with _as_input_error():
            compiled = compile_suite(suite)

        ref = parse_data(data, what="quality gate data")
        engine = choose_engine(ref, str(self.engine), conn_id=self.data_conn_id, what="quality gate data")
        if engine == "pandas":
            df = load_table(data, conn_id=self.data_conn_id, what="quality gate data")
            self.log.info("Read %s: %d rows x %d columns", data, len(df), len(df.columns))
            with _as_input_error():
                summary, result = validate_frame(
                    df, compiled, fail_on=fail_on, result_format=self.result_format, data=data
                )
            del df
        else:
            with engine_session(self.data_conn_id) as session:
                table = open_data(session, ref, engine, what="quality gate data")
                columns, rows = table.columns(), table.row_count()
                self.log.info(
                    "Validating %s on %s: %d rows x %d columns; the expectations run as %s queries",
                    data, table.engine, rows, len(columns), table.engine,
                )  # fmt: skip
                with _as_input_error():
                    summary, result = validate_source(
                        table.gx_source(), columns, rows, compiled,
                        fail_on=fail_on, result_format=self.result_format, data=data,
                    )  # fmt: skip
        summary["engine"] = engine
        self._lineage = (summary, result)  # for get_openlineage_facets_on_complete, also on failure

        summary["mlflow_run_id"] = None
        artefacts = self._write_report(context, summary, result)
        if self.mlflow_conn_id:
            self._log_to_mlflow(context, summary, artefacts)

        self._log_verdict(summary)
        if not summary["success"]:
            # Downstream alerting reads the summary even though the task fails.
            context["ti"].xcom_push(key="return_value", value=summary)
            raise DataQualityGateFailed(failure_message(summary), summary=summary)
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        from airflow_mlops.openlineage import quality_gate_lineage

        return quality_gate_lineage(self)

    # ----------------------------------------------------------------------------------------

    def _checked_fail_on(self) -> FailOn:
        if not self._fail_on_templated:
            return self.fail_on  # checked in __init__
        try:
            return parse_fail_on(self.fail_on)
        except ValueError as err:
            raise DataInputError(str(err)) from err

    def _load_suite(self, context: Context) -> Suite:
        suite = self.suite
        with _as_input_error():
            if isinstance(suite, (str, os.PathLike)):
                path = os.fspath(suite)
                suite = find_suite_file(path, self._suite_folders(context))
                if suite != path:
                    self.log.info("Suite %s found at %s", path, suite)
            return load_suite(suite)

    def _suite_folders(self, context: Context) -> list[str]:
        """Where a relative suite path is looked up after the working directory: beside the DAG
        file, then in the DAG's ``template_searchpath``."""
        dag = context.get("dag") or self.get_dag()
        fileloc = getattr(dag, "fileloc", None)
        folders = [os.path.dirname(fileloc)] if fileloc else []
        searchpath = getattr(dag, "template_searchpath", None) or []
        folders.extend([searchpath] if isinstance(searchpath, str) else list(searchpath))
        return folders

    def _write_report(
        self, context: Context, summary: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, str]:
        """Write the HTML page and the full result; returns ``{file name: text}``."""
        folder = str(self.report_dir) if self.report_dir else default_report_dir("quality", context)
        artefacts = {REPORT_JSON: json.dumps(result, indent=1, default=str)}
        summary["result_uri"] = write_report(folder, REPORT_JSON, artefacts[REPORT_JSON])
        # the page links the JSON by its file name, which sits beside it
        artefacts[REPORT_HTML] = render_html(summary, result, result_link=REPORT_JSON)
        summary["report_uri"] = write_report(folder, REPORT_HTML, artefacts[REPORT_HTML])
        self.log.info(
            "Wrote the quality report to %s (full result: %s)", summary["report_uri"], summary["result_uri"]
        )
        MlopsReportLink.persist(context, summary["report_uri"])
        return artefacts

    def _log_to_mlflow(self, context: Context, summary: dict[str, Any], artefacts: dict[str, str]) -> None:
        ti = context["ti"]
        run = self.hook.log_report_run(
            experiment=self.mlflow_experiment,
            run_name=f"{ti.dag_id}.{ti.task_id}",
            tags={
                tags.AIRFLOW_DAG_ID: ti.dag_id,
                tags.AIRFLOW_RUN_ID: ti.run_id,
                tags.AIRFLOW_TASK_ID: ti.task_id,
                tags.QUALITY_DATA_URI: summary["data"] or "",
                tags.QUALITY_SUITE: summary["suite"] or "",
                tags.QUALITY_FAIL_ON: summary["fail_on"],
                tags.QUALITY_SUCCESS: str(summary["success"]).lower(),
            },
            metrics=summary_metrics(summary),
            artifacts=artefacts,
            artifact_path="quality",
            failed=not summary["success"],
        )
        summary["mlflow_run_id"] = run.run_id
        summary["mlflow_artifact_uri"] = f"{run.artifact_uri}/{REPORT_HTML}"
        self.log.info(
            "Logged the quality report to MLflow run %s (experiment %s) at %s",
            run.run_id,
            self.mlflow_experiment,
            summary["mlflow_artifact_uri"],
        )
        MlflowRunLink.persist(context, run.url)

    def _log_verdict(self, summary: dict[str, Any]) -> None:
        failed = summary["failed"]
        for row in failed:
            if row["blocking"]:
                self.log.error("[%s] %s", row["severity"], row["message"])
            else:
                self.log.warning(
                    "[%s] %s (below fail_on=%s: not blocking)",
                    row["severity"],
                    row["message"],
                    summary["fail_on"],
                )
        if summary["success"]:
            self.log.info(
                "Gate passed: %d of %d expectations failed, none at or above fail_on=%s",
                len(failed),
                summary["evaluated"],
                summary["fail_on"],
            )
        else:
            self.log.error(
                "Gate failed: %d of %d expectations failed at or above fail_on=%s",
                sum(r["blocking"] for r in failed),
                summary["evaluated"],
                summary["fail_on"],
            )


@contextmanager
def _as_input_error() -> Iterator[None]:
    """A suite the gate cannot use, or one about columns the data lacks, fails the task (no retry)
    with the same message."""
    try:
        yield
    except (SuiteError, MissingColumnError) as err:
        raise DataInputError(str(err)) from err
