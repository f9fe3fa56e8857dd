"""Evidently's HTML drift report for a decision already taken, with a banner stating that decision.

Pure and Airflow-free: the sensor writes the page with :func:`airflow_mlops.io.write_report`.
Evidently is imported inside :func:`render_report`.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from airflow_mlops.core.drift.columns import CATEGORICAL, NUMERICAL, TEXT

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.core.drift.verdict import DriftResult


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
    engine: str | None = None,
) -> str:
    """Evidently's ``DataDriftPreset`` HTML for the tested columns, on a seeded sample of each side.

    The column types are the ones the decision used; a banner states the sample and the decision.

    :param engine: the engine that drew ``reference`` and ``current`` as samples of the
        decision's data (the banner says so), or None when they are the data itself.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

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
    # an engine hands over a sample it drew: the totals are the decision's
    totals = (max(len(reference), result.reference_rows), max(len(current), result.current_rows))
    sampled = any(len(f) < total for f, total in zip(frames, totals, strict=True))
    drawn = f"a random sample drawn by {engine}" if engine else f"a seeded random sample (seed {seed})"
    note = (
        f"Evidently report computed on {drawn} of {len(frames[0]):,} of {totals[0]:,} reference rows "
        f"and {len(frames[1]):,} of {totals[1]:,} current rows; its numbers may differ slightly from "
        "the decision."
        if sampled
        else f"Evidently report computed on all {totals[0]:,} reference and {totals[1]:,} current rows."
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
