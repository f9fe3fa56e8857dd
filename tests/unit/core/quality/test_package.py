"""The package surface: today's names importable from ``airflow_mlops.core.quality``, a light
import, and ``python -m airflow_mlops.core.quality`` as documented."""

from __future__ import annotations

import json
import subprocess
import sys

import airflow_mlops.core.quality as quality

# every public name of the single module this package replaced
PUBLIC = (
    "DEFAULT_SEVERITY FAIL_ON RESULT_FORMATS SEVERITIES SUITE_SUFFIXES_JSON SUITE_SUFFIXES_YAML "
    "CompiledSuite ExpectationSpec MissingColumnError Suite SuiteError blocks check_columns "
    "compile_suite describe_result expected_text failure_message generate_suite "
    "known_expectation_types load_suite main parse_suite render_html run_validation suggest_suite "
    "suite_to_dict summarize validate_table write_suite"
).split()


def test_public_names_are_re_exported():
    assert [name for name in PUBLIC if not hasattr(quality, name)] == []
    assert sorted(quality.__all__) == sorted(n for n in quality.__all__ if hasattr(quality, n))


def test_import_and_cli_help_stay_light():
    """Importing the package, and ``--help``, import neither GX, pandas nor Airflow (fresh interpreter)."""
    code = (
        "import json, sys\n"
        "import airflow_mlops.core.quality\n"
        "heavy = ('great_expectations', 'pandas', 'numpy', 'airflow', 'yaml', 'fsspec')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []

    proc = subprocess.run(
        [sys.executable, "-m", "airflow_mlops.core.quality", "check", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m airflow_mlops.core.quality check")
    assert "--fail-on {critical,warning,any}" in proc.stdout
    assert proc.stderr == ""  # no runpy warning about __main__ being imported twice
