"""Data drift sensor: compares a current window with reference data, column by column.

The sensor reads both tables, asks :func:`airflow_mlops.core.drift.compare` for the verdict,
writes Evidently's report (:func:`airflow_mlops.core.drift.report.render_report`), logs to MLflow
through :meth:`MlflowHook.log_report_run`, and records the summary in XCom and the Asset event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_mlops.assets import DRIFT_ASSET_ALIAS, drift_asset_uri, emit, outlet_for, subject_of, task_origin
from airflow_mlops.core import tags
from airflow_mlops.core.drift import DriftConfigError, DriftInputError, compare, validate_settings
from airflow_mlops.core.drift.pushdown import compare_on_engine
from airflow_mlops.core.drift.report import render_report
from airflow_mlops.core.engines.uri import check_engine, parse_data_uri
from airflow_mlops.exceptions import DataInputError, RegistryError
from airflow_mlops.hooks.mlflow import MODELS_SCHEME, MlflowHook, parse_model_uri
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
from airflow_mlops.sensors.base import StrictSensor
from airflow_mlops.templating import is_templated

if TYPE_CHECKING:
    import pandas as pd
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_mlops.core.drift import ColumnDrift, DriftResult

REPORT_NAME = "drift_report.html"
DEFAULT_REFERENCE_ALIAS = "champion"
"""The alias a bare ``models:/<name>`` reference means."""


class DataDriftSensor(StrictSensor):
    """
    Wait until the current data has drifted from the reference data, column by column.

    Each column gets the statistical test and threshold that Evidently 0.7's ``DataDriftPreset``
    picks by default (by column type and sample size: K-S / chi-square / Z-test for up to 1000
    reference rows, normed Wasserstein / Jensen-Shannon above), or the ones configured; the
    dataset has drifted when the share of drifted columns reaches ``drift_share``. The statistics
    are computed directly (see :mod:`airflow_mlops.core.drift`), so the decision takes seconds on
    millions of rows; Evidently's HTML report is rendered on a seeded sample and linked.

    On drift the sensor succeeds, returns the summary, and emits an Asset event
    ``x-mlops://drift/<model_name or dataset>`` (see :func:`drift_asset_uri`) carrying the summary,
    on which a retraining DAG can be scheduled. Without drift it pokes again (``mode="reschedule"``
    by default); with ``soft_fail=True`` a window that never drifts ends *skipped*. Bad input
    (unreadable data, different columns, a ``models:/`` reference without recorded training data,
    invalid settings) fails the task even with ``soft_fail``: it must never look like "no drift".
    Columns that cannot be tested (all null, constant, mixed types) are listed in the summary as
    ``skipped`` with the reason and do not count in the drift share.

    :param reference: the reference data: a path or URI (parquet or CSV; a folder of parts), a
        table or query through a connection (``sql://<conn_id>/<schema.table>``,
        ``sql://<conn_id>?query=SELECT...``, ``spark://<conn_id>/<table>``), or
        ``models:/<name>@<alias>`` / ``models:/<name>/<version>`` meaning the training data recorded
        in that model version's lineage tag ``mlops.data.train.uri``. Templated.
    :param current: the current window: a path, URI or table URI as for ``reference``. Templated.
    :param engine: where file inputs are read: ``"auto"`` (default: DuckDB on the worker for
        parquet data above ``[mlops] duckdb_auto_rows`` rows, else pandas), ``"pandas"`` or
        ``"duckdb"``. Table inputs are always computed by their engine. On an engine the
        statistics are computed where the data lives and verdicts equal the in-memory path (see
        :mod:`airflow_mlops.core.drift.pushdown`); text columns are skipped there. Templated.
    :param columns: the columns to compare (default: all; both sides must then have the same
        columns). Templated.
    :param drift_share: share of drifted columns at which the dataset counts as drifted.
    :param method: one Evidently stat-test name for every column (``"ks"``, ``"wasserstein"``,
        ``"psi"``, ...); default: Evidently's choice per column.
    :param per_column_method: ``{column: method}``, overriding ``method``.
    :param threshold: one threshold for every column (default: the method's own).
    :param per_column_threshold: ``{column: threshold}``, overriding ``threshold``.
    :param report_dir: where the HTML report goes (a local folder or an fsspec URL); default
        ``$AIRFLOW_HOME/reports/drift/<dag_id>/<run_id>/<task_id>/``. Templated.
    :param report: write the Evidently HTML report.
    :param report_sample_size: rows per side the report is computed on (a seeded sample; None:
        all rows). Evidently's preset takes minutes on millions of rows; the decision always uses
        all rows.
    :param mlflow_conn_id: when given, the report, the summary and the scores are logged to an
        MLflow run in ``mlflow_experiment``. ``models:/`` references are resolved through this
        connection, or ``mlflow_default``.
    :param mlflow_experiment: MLflow experiment for the drift runs.
    :param model_name: the model this data feeds; names the Asset (default: the model of a
        ``models:/`` reference, else the reference dataset's file name). Templated.
    :param data_conn_id: Airflow connection for object-storage URIs (credentials), if needed.
    :return: ``{drift_detected, drift_share, drifted_columns, per_column: {col: {method, score,
        threshold, drifted} | {skipped}}, skipped_columns, report_uri, reference, current, ...}``
    """

    template_fields: Sequence[str] = ("reference", "current", "columns", "report_dir", "model_name", "engine")
    operator_extra_links = (MlopsReportLink(), MlflowRunLink())
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        reference: str,
        current: str,
        columns: list[str] | None = None,
        drift_share: float = 0.5,
        method: str | None = None,
        per_column_method: dict[str, str] | None = None,
        threshold: float | None = None,
        per_column_threshold: dict[str, float] | None = None,
        report_dir: str | None = None,
        report: bool = True,
        report_sample_size: int | None = 10_000,
        mlflow_conn_id: str | None = None,
        mlflow_experiment: str = "mlops-drift",
        model_name: str | None = None,
        data_conn_id: str | None = None,
        engine: str = "auto",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        if not reference or not isinstance(reference, str):
            raise ValueError("reference is required: a data URI or models:/<name>@<alias>")
        if not current or not isinstance(current, str):
            raise ValueError("current is required: the URI of the data window to check")
        if reference.startswith(MODELS_SCHEME) and not is_templated(reference):
            parse_model_uri(reference)
        for setting, value in (("reference", reference), ("current", current)):
            if not is_templated(value) and not value.startswith(MODELS_SCHEME):
                parse_data_uri(value, setting)
        if not is_templated(engine):
            engine = check_engine(engine)
        try:
            validate_settings(
                drift_share=drift_share,
                method=method,
                per_column_method=per_column_method,
                threshold=threshold,
                per_column_threshold=per_column_threshold,
                columns=None if isinstance(columns, str) else columns,
            )
        except DriftConfigError as err:
            raise ValueError(str(err)) from None
        if report_sample_size is not None and (
            not isinstance(report_sample_size, int) or report_sample_size < 1
        ):
            raise ValueError(
                f"report_sample_size must be a positive integer or None, got {report_sample_size!r}"
            )
        self._outlet = outlet_for(drift_asset_uri(subject_of(reference, model_name)), DRIFT_ASSET_ALIAS)
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), self._outlet]
        super().__init__(**kwargs)
        self.reference = reference
        self.current = current
        self.columns = columns
        self.drift_share = drift_share
        self.method = method
        self.per_column_method = per_column_method
        self.threshold = threshold
        self.per_column_threshold = per_column_threshold
        self.report_dir = report_dir
        self.report = report
        self.report_sample_size = report_sample_size
        self.mlflow_conn_id = mlflow_conn_id
        self.mlflow_experiment = mlflow_experiment
        self.model_name = model_name
        self.data_conn_id = data_conn_id
        self.engine = engine

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id or MlflowHook.default_conn_name)

    def poke(self, context: Context) -> PokeReturnValue:
        reference_uri, lineage = self._resolve_reference()
        columns = self._columns()
        refs = parse_data(reference_uri, what="reference data"), parse_data(self.current, what="current data")
        engines = [choose_engine(r, str(self.engine), conn_id=self.data_conn_id) for r in refs]
        if engines == ["pandas", "pandas"]:
            result, reference, current = self._compare_in_memory(reference_uri, lineage, columns)
            written = self._write_report(context, reference, current, result) if self.report else None
        else:
            engines = ["duckdb" if e == "pandas" else e for e in engines]
            with engine_session(self.data_conn_id) as session:
                inputs = [
                    open_data(session, ref, engine, what=what)
                    for ref, engine, what in zip(
                        refs, engines, ("reference data", "current data"), strict=True
                    )
                ]
                self.log.info(
                    "Comparing current %s (on %s) with reference %s (on %s)%s: statistics computed by the engine",
                    self.current, inputs[1].engine, reference_uri, inputs[0].engine,
                    f" [{lineage}]" if lineage else "",
                )  # fmt: skip
                result = self._decide(compare_on_engine, reference_uri, (inputs[0], inputs[0].source),
                                      (inputs[1], inputs[1].source), columns)  # fmt: skip
                written = self._engine_report(context, inputs, result) if self.report else None
        self.log.info(
            "Drift %s: %d of %d tested columns drifted (share %.3f, threshold %.3f)%s%s",
            "DETECTED" if result.drift_detected else "not detected",
            len(result.drifted_columns),
            len(result.tested),
            result.share,
            result.drift_share_threshold,
            f"; drifted: {', '.join(result.drifted_columns)}" if result.drifted_columns else "",
            f"; skipped: {', '.join(result.skipped_columns)}" if result.skipped_columns else "",
        )

        summary = result.summary()
        summary.update(
            reference=reference_uri,
            reference_model=lineage,
            current=self.current,
            asset_uri=drift_asset_uri(subject_of(self.reference, self.model_name)),
            engine=" and ".join(dict.fromkeys(engines)),
        )
        summary["report_uri"] = written[0] if written else None
        self._lineage = summary  # for get_openlineage_facets_on_complete
        if self.mlflow_conn_id:
            self._log_to_mlflow(context, summary, report_page=written[1] if written else None)
        context["ti"].xcom_push(key=tags.XCOM_DRIFT_SUMMARY, value=summary)
        if result.drift_detected:
            emit(context, self._outlet, summary["asset_uri"], {**summary, **task_origin(context)})
            self.log.info("Emitting the drift event on %s", summary["asset_uri"])
        return PokeReturnValue(is_done=result.drift_detected, xcom_value=summary)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        from airflow_mlops.openlineage import drift_lineage

        return drift_lineage(self)

    def _compare_in_memory(
        self, reference_uri: str, lineage: str | None, columns: list[str] | None
    ) -> tuple[DriftResult, pd.DataFrame, pd.DataFrame]:
        current = load_table(self.current, conn_id=self.data_conn_id, what="current data", columns=columns)
        reference = load_table(
            reference_uri, conn_id=self.data_conn_id, what="reference data", columns=columns
        )
        self.log.info(
            "Comparing current %s (%d rows) with reference %s (%d rows)%s",
            self.current,
            len(current),
            reference_uri,
            len(reference),
            f" [{lineage}]" if lineage else "",
        )
        return self._decide(compare, reference_uri, reference, current, columns), reference, current

    def _engine_report(
        self, context: Context, inputs: list[Any], result: DriftResult
    ) -> tuple[str, str] | None:
        """The report on a sample each engine draws (``report_sample_size`` rows per side)."""
        try:
            samples = [i.sample(self.report_sample_size or 10_000) for i in inputs]
        except Exception as err:  # the report is an aid: its failure must not hide the verdict
            self.log.error("Could not sample the data for the drift report: %s: %s", type(err).__name__, err)
            return None
        drawn_by = " and ".join(dict.fromkeys(i.engine for i in inputs))
        return self._write_report(context, *samples, result, engine=drawn_by)

    def _decide(
        self, decide: Any, reference_uri: str, reference: Any, current: Any, columns: Any
    ) -> DriftResult:
        """Run ``decide`` (:func:`compare` or :func:`compare_on_engine`) with the sensor's settings;
        bad input or settings fail the task naming both inputs."""
        try:
            return decide(
                reference,
                current,
                columns=columns,
                drift_share=self.drift_share,
                method=self.method,
                per_column_method=self.per_column_method,
                threshold=self.threshold,
                per_column_threshold=self.per_column_threshold,
                on_column=self._log_column,
            )
        except (DriftInputError, DriftConfigError) as err:
            raise DataInputError(f"drift check of {self.current} against {reference_uri}: {err}") from err

    def _log_column(self, verdict: ColumnDrift) -> None:
        if verdict.skipped is not None:
            self.log.warning("column %s: skipped: %s", verdict.column, verdict.skipped)
            return
        self.log.info(
            "column %s (%s, %d/%d values): %s = %.6g, threshold %.6g -> %s",
            verdict.column,
            verdict.type,
            verdict.reference_count,
            verdict.current_count,
            verdict.method,
            verdict.score,
            verdict.threshold,
            "DRIFT" if verdict.drifted else "no drift",
        )

    def _columns(self) -> list[str] | None:
        """``columns`` as a list; a template renders it to a string (a JSON/Python list, or
        comma-separated names)."""
        columns = self.columns
        if isinstance(columns, str):
            try:
                columns = json.loads(columns.replace("'", '"'))
            except ValueError:
                columns = [c.strip() for c in columns.split(",") if c.strip()]
        return list(columns) if columns else None

    def _resolve_reference(self) -> tuple[str, str | None]:
        """The reference data URI, and ``name@alias (vN)`` when it came from a model's lineage."""
        reference = str(self.reference).strip()
        if not reference.startswith(MODELS_SCHEME):
            return reference, None
        try:
            name, alias, version = parse_model_uri(reference)
        except ValueError as err:
            raise DataInputError(f"reference: {err}") from None
        if not alias and not version:
            alias = DEFAULT_REFERENCE_ALIAS
        try:
            found = self.hook.get_model_version(name, alias=alias, version=version, missing_ok=True)
        except RegistryError as err:
            raise DataInputError(f"reference {reference}: {err}") from err
        if found is None:
            raise DataInputError(
                f"reference {reference}: no version of {name} holds "
                f"{f'@{alias}' if alias else f'version {version}'} in the registry at {self.hook.registry_uri}"
            )
        label = f"{name}@{alias} (v{found.version})" if alias else f"{name} v{found.version}"
        data_uri = (found.tags or {}).get(tags.TRAIN_DATA_URI)
        if not data_uri:
            raise DataInputError(
                f"reference {reference}: model version {label} has no lineage tag {tags.TRAIN_DATA_URI}, so "
                "its training data is unknown; register the model with TrainModelOperator, or pass "
                "reference= as a data URI"
            )
        self.log.info("Reference %s resolves to training data %s of %s", reference, data_uri, label)
        return data_uri, label

    def _write_report(
        self,
        context: Context,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        result: DriftResult,
        engine: str | None = None,
    ) -> tuple[str, str] | None:
        """``(uri, page)`` of Evidently's HTML report on a seeded sample, or None when it could not
        be written; the decision itself never depends on it."""
        folder = str(self.report_dir).rstrip("/") if self.report_dir else default_report_dir("drift", context)
        try:
            page = render_report(
                reference,
                current,
                result,
                sample_size=self.report_sample_size,
                method=self.method,
                per_column_method=self.per_column_method,
                threshold=self.threshold,
                per_column_threshold=self.per_column_threshold,
                engine=engine,
            )
            uri = write_report(folder, REPORT_NAME, page)
        except Exception as err:  # the report is an aid: its failure must not hide the verdict
            self.log.error("Could not write the drift report to %s: %s: %s", folder, type(err).__name__, err)
            return None
        self.log.info("Drift report: %s", uri)
        MlopsReportLink.persist(context, uri)
        return uri, page

    def _log_to_mlflow(self, context: Context, summary: dict[str, Any], *, report_page: str | None) -> None:
        """The summary, the scores and the report, in one MLflow run of ``mlflow_experiment``."""
        origin = task_origin(context)
        metrics = {"drift_share": summary["drift_share"]}
        for column, verdict in summary["per_column"].items():
            if verdict.get("score") is not None:
                metrics[f"drift_score.{column}"] = verdict["score"]
        artifacts = {"summary.json": json.dumps(summary, indent=1, sort_keys=True, default=str)}
        if report_page is not None:
            artifacts[REPORT_NAME] = report_page
        run = self.hook.log_report_run(
            experiment=self.mlflow_experiment,
            run_name=f"drift {summary['asset_uri'].rsplit('/', 1)[-1]} {origin['run_id']}",
            tags={
                tags.DRIFT_ASSET: summary["asset_uri"],
                tags.DRIFT_DETECTED: str(summary["drift_detected"]).lower(),
                tags.AIRFLOW_DAG_ID: origin["dag_id"],
                tags.AIRFLOW_RUN_ID: origin["run_id"],
                tags.AIRFLOW_TASK_ID: origin["task_id"],
            },
            metrics=metrics,
            artifacts=artifacts,
            artifact_path="drift",
        )
        self.log.info(
            "Logged the drift check to MLflow run %s (experiment %s)", run.run_id, self.mlflow_experiment
        )
        MlflowRunLink.persist(context, run.url)
        summary["mlflow_run_id"] = run.run_id
