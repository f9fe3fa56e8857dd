"""Data drift sensor: compares a current window with reference data, column by column."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_mlops.assets import DRIFT_ASSET_ALIAS, drift_asset_uri, emit, outlet_for, subject_of, task_origin
from airflow_mlops.core import tags
from airflow_mlops.core.drift import DriftConfigError, validate_settings
from airflow_mlops.exceptions import DataInputError, RegistryError
from airflow_mlops.hooks.mlflow import MODELS_SCHEME, MlflowHook, parse_model_uri
from airflow_mlops.io import default_report_dir, write_report
from airflow_mlops.links.mlflow import MlflowRunLink, MlopsReportLink
from airflow_mlops.sensors.base import StrictSensor

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

    from airflow_mlops.core.drift import ColumnDrift, DriftResult


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

    :param reference: the reference data: a path or URI (parquet or CSV; a folder of parts), or
        ``models:/<name>@<alias>`` / ``models:/<name>/<version>`` meaning the training data recorded
        in that model version's lineage tag ``mlops.data.train.uri``. Templated.
    :param current: the current window: a path or URI (parquet or CSV). Templated.
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

    template_fields: Sequence[str] = ("reference", "current", "columns", "report_dir", "model_name")
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
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        if not reference or not isinstance(reference, str):
            raise ValueError("reference is required: a data URI or models:/<name>@<alias>")
        if not current or not isinstance(current, str):
            raise ValueError("current is required: the URI of the data window to check")
        if reference.startswith(MODELS_SCHEME) and "{{" not in reference:
            parse_model_uri(reference)
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
        self._asset_uri = drift_asset_uri(subject_of(reference, model_name))
        self._outlet = outlet_for(self._asset_uri, DRIFT_ASSET_ALIAS)
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

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id or MlflowHook.default_conn_name)

    # ----------------------------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_mlops.core.drift import DriftInputError, compare
        from airflow_mlops.io import load_table

        reference_uri, lineage = self._resolve_reference()
        columns = self._columns()
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
        try:
            result = compare(
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

        summary = result.summary()
        summary.update(
            reference=reference_uri,
            reference_model=lineage,
            current=self.current,
            asset_uri=self._asset_uri if "{{" not in self._asset_uri else self._rendered_asset_uri(),
        )
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

        summary["report_uri"] = (
            self._write_report(context, reference, current, result) if self.report else None
        )
        if self.mlflow_conn_id:
            self._log_to_mlflow(context, summary)
        context["ti"].xcom_push(key=tags.XCOM_DRIFT_SUMMARY, value=summary)
        if result.drift_detected:
            emit(context, self._outlet, summary["asset_uri"], {**summary, **task_origin(context)})
            self.log.info("Emitting the drift event on %s", summary["asset_uri"])
        return PokeReturnValue(is_done=result.drift_detected, xcom_value=summary)

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
        columns = self.columns
        if isinstance(columns, str):  # a template that rendered to a JSON / Python list
            try:
                columns = json.loads(columns.replace("'", '"'))
            except ValueError:
                columns = [c.strip() for c in columns.split(",") if c.strip()]
        return list(columns) if columns else None

    def _rendered_asset_uri(self) -> str:
        return drift_asset_uri(subject_of(self.reference, self.model_name))

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
            alias = "champion"
        model_version = self._model_version(name, alias, version)
        data_uri = (model_version.tags or {}).get(tags.TRAIN_DATA_URI)
        label = f"{name}@{alias} (v{model_version.version})" if alias else f"{name} v{model_version.version}"
        if not data_uri:
            raise DataInputError(
                f"reference {reference}: model version {label} has no lineage tag {tags.TRAIN_DATA_URI}, so "
                "its training data is unknown; register the model with TrainModelOperator, or pass "
                "reference= as a data URI"
            )
        self.log.info("Reference %s resolves to training data %s of %s", reference, data_uri, label)
        return data_uri, label

    def _model_version(self, name: str, alias: str | None, version: str | None) -> Any:
        try:
            found = self.hook.get_model_version(name, alias=alias, version=version, missing_ok=True)
        except RegistryError as err:
            raise DataInputError(f"reference models:/{name}: {err}") from err
        if found is None:
            target = f"@{alias}" if alias else f"version {version}"
            raise DataInputError(
                f"reference models:/{name}: no version of {name} holds {target} in the registry at "
                f"{self.hook.registry_uri}"
            )
        return found

    # ----------------------------------------------------------------------------------------
    # report

    def _report_location(self, context: Context) -> str:
        if self.report_dir:
            return str(self.report_dir).rstrip("/")
        return default_report_dir("drift", context)

    def _write_report(
        self, context: Context, reference: pd.DataFrame, current: pd.DataFrame, result: DriftResult
    ) -> str | None:
        """Evidently's HTML report on a seeded sample; the decision itself never depends on it."""
        location = self._report_location(context)
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
            )
            uri = write_report(location, "drift_report.html", page)
        except Exception as err:  # the report is an aid: its failure must not hide the verdict
            self.log.error(
                "Could not write the drift report to %s: %s: %s", location, type(err).__name__, err
            )
            return None
        self.log.info("Drift report: %s", uri)
        MlopsReportLink.persist(context, uri)
        return uri

    def _log_to_mlflow(self, context: Context, summary: dict[str, Any]) -> None:

        origin = task_origin(context)
        metrics = {"drift_share": summary["drift_share"]}
        for column, verdict in summary["per_column"].items():
            if verdict.get("score") is not None:
                metrics[f"drift_score.{column}"] = verdict["score"]
        artifacts = {"summary.json": json.dumps(summary, indent=1, sort_keys=True, default=str)}
        report_uri = summary.get("report_uri")
        if report_uri and report_uri.startswith("file://"):
            with open(report_uri[len("file://") :], encoding="utf-8") as fh:
                artifacts[os.path.basename(report_uri)] = fh.read()
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


def render_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    result: DriftResult,
    *,
    sample_size: int | None = 10_000,
    seed: int = 0,
    method: str | None = None,
    per_column_method: dict[str, str] | None = None,
    threshold: float | None = None,
    per_column_threshold: dict[str, float] | None = None,
) -> str:
    """Evidently's ``DataDriftPreset`` HTML for the tested columns, on a seeded sample of each side.

    The column types are the ones the decision used; a banner states the sample and the decision.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from airflow_mlops.core.drift import CATEGORICAL, NUMERICAL, TEXT

    tested = result.tested
    names = [c.column for c in tested]
    by_type = {t: [c.column for c in tested if c.type == t] for t in (NUMERICAL, CATEGORICAL, TEXT)}
    frames = []
    for frame in (reference, current):
        frame = frame[[c for c in frame.columns if str(c) in set(names)]]
        frame.columns = [str(c) for c in frame.columns]
        if sample_size is not None and len(frame) > sample_size:
            frame = frame.sample(n=sample_size, random_state=seed)
        frames.append(frame)
    definition = DataDefinition(
        numerical_columns=by_type[NUMERICAL],
        categorical_columns=by_type[CATEGORICAL],
        text_columns=by_type[TEXT],
    )
    reference_ds, current_ds = (Dataset.from_pandas(f, data_definition=definition) for f in frames)
    preset = DataDriftPreset(
        columns=names,
        drift_share=result.drift_share_threshold,
        method=method,
        per_column_method={k: v for k, v in (per_column_method or {}).items() if k in names} or None,
        threshold=threshold,
        per_column_threshold={k: v for k, v in (per_column_threshold or {}).items() if k in names} or None,
    )
    page = Report([preset], include_tests=True).run(current_ds, reference_ds).get_html_str(as_iframe=False)
    sampled = any(len(f) < len(o) for f, o in zip(frames, (reference, current), strict=True))
    note = (
        f"Evidently report computed on a seeded random sample (seed {seed}) of "
        f"{len(frames[0]):,} of {len(reference):,} reference rows and {len(frames[1]):,} of "
        f"{len(current):,} current rows; its numbers may differ slightly from the decision."
        if sampled
        else f"Evidently report computed on all {len(reference):,} reference and {len(current):,} current rows."
    )
    decision = (
        f"airflow-mlops decision on all rows: drift {'DETECTED' if result.drift_detected else 'not detected'}"
        f" &mdash; {len(result.drifted_columns)} of {len(tested)} columns drifted "
        f"(share {result.share:.3f}, threshold {result.drift_share_threshold:.3f})"
    )
    if result.drifted_columns:
        decision += ": " + html.escape(", ".join(result.drifted_columns))
    skipped = "".join(
        f"<li>{html.escape(c)}: skipped &mdash; {html.escape(r)}</li>"
        for c, r in result.skipped_columns.items()
    )
    banner = (
        '<div style="font-family:sans-serif;padding:12px 16px;background:#fff4e5;border-bottom:1px solid #f0c36d">'
        f"<b>{decision}</b><br>{html.escape(note)}" + (f"<ul>{skipped}</ul>" if skipped else "") + "</div>"
    )
    marker = page.find("<body")
    if marker == -1:
        return banner + page
    end = page.find(">", marker) + 1
    return page[:end] + banner + page[end:]
