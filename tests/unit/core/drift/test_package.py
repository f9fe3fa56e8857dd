"""The package surface: today's names importable from ``airflow_mlops.core.drift``, and a light
import (the sensor imports it when a DAG file is parsed)."""

from __future__ import annotations

import json
import subprocess
import sys

import airflow_mlops.core.drift as drift

# every public name of the single module this package replaced, and the report it took in
PUBLIC = (
    "CATEGORICAL FAST_TESTS INTEGER_CARDINALITY_LIMIT NUMERICAL SMALL_SAMPLE_MAX STAT_TESTS TEXT "
    "ColumnDrift DriftConfigError DriftInputError DriftResult column_drift compare default_method "
    "infer_column_type validate_settings render_report"
).split()


def test_public_names_are_re_exported():
    assert [name for name in PUBLIC if not hasattr(drift, name)] == []
    assert [name for name in drift.__all__ if not hasattr(drift, name)] == []
    assert callable(drift.compare)  # the function, not a submodule of the same name


def test_import_stays_light():
    """Importing the package imports neither numpy, pandas, scipy, Evidently nor Airflow."""
    code = (
        "import json, sys\n"
        "import airflow_mlops.core.drift\n"
        "heavy = ('numpy', 'pandas', 'scipy', 'evidently', 'airflow')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
