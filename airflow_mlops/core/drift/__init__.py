"""Per-column drift statistics and verdicts that reproduce Evidently 0.7's ``DataDriftPreset``, fast.

Evidently's preset spends most of its time building the report (correlations, histograms,
scatter data, widgets), not on the statistics. The sensor's decision needs only the statistics,
so this package computes them directly with vectorised numpy/scipy, making the same choices the
preset makes:

* **Column type** (:mod:`.columns`) -- inferred from the *current* data as Evidently does; columns
  that cannot be tested are skipped with a reason.
* **Test, score and threshold** (:mod:`.stats`) -- Evidently's default test by column type and
  sample size, or the configured one. ``ks``, ``chisquare``, ``z``, ``wasserstein``,
  ``jensenshannon`` and ``psi`` are computed here from each side's sufficient statistics (sorted
  values, value counts); any other Evidently test name (and text columns) is delegated to
  Evidently's own stat-test function, which imports Evidently on first use.
* **Verdict** (:mod:`.verdict`) -- per column, and for the dataset: drift when the share of
  drifted tested columns is at least ``drift_share``; bad input raises, never reads as "no drift".
* **Report** (:mod:`.report`) -- Evidently's HTML report for a decision taken here.

Pure logic: no Airflow import; pandas/numpy/scipy/evidently are imported inside functions, so
importing this package (the sensor does, to validate its settings at parse time) stays light.
"""

from __future__ import annotations

from airflow_mlops.core.drift.columns import (
    CATEGORICAL,
    INTEGER_CARDINALITY_LIMIT,
    NUMERICAL,
    TEXT,
    infer_column_type,
)
from airflow_mlops.core.drift.report import render_report
from airflow_mlops.core.drift.stats import (
    FAST_TESTS,
    SMALL_SAMPLE_MAX,
    STAT_TESTS,
    Side,
    StatTest,
    default_method,
)
from airflow_mlops.core.drift.verdict import (
    ColumnDrift,
    DriftConfigError,
    DriftInputError,
    DriftResult,
    column_drift,
    compare,
    validate_settings,
)

__all__ = [
    "CATEGORICAL",
    "FAST_TESTS",
    "INTEGER_CARDINALITY_LIMIT",
    "NUMERICAL",
    "SMALL_SAMPLE_MAX",
    "STAT_TESTS",
    "TEXT",
    "ColumnDrift",
    "DriftConfigError",
    "DriftInputError",
    "DriftResult",
    "Side",
    "StatTest",
    "column_drift",
    "compare",
    "default_method",
    "infer_column_type",
    "render_report",
    "validate_settings",
]
