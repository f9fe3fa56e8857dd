"""Data-quality gate logic on Great Expectations 1.x, with no Airflow import.

One module per concern; every public name is re-exported here:

- :mod:`.suite`: loading a suite (GX suite JSON/YAML file, suite dict or list of expectation dicts)
  with per-expectation severities, and writing one;
- :mod:`.gx`: the suite compiled into GX expectations, the column check, the GX run;
- :mod:`.describe`: one expectation result in words (expected, observed, message);
- :mod:`.verdict`: the gate's verdict: ``fail_on``, which failures block, the summary, the message;
- :mod:`.report`: the self-contained HTML page;
- :mod:`.suggest`: a starter suite from a reference dataset;
- :mod:`.validate`: the gate's steps on a DataFrame or a data URI, without Airflow;
- :mod:`.cli`: the command line.

``great_expectations`` costs ~12 s to import and pandas ~1 s: both are imported only inside the
functions that need them, so importing this package stays light. Command line (suite generation
and a one-off check)::

    python -m airflow_mlops.core.quality suggest reference.parquet -o include/expectations/my.json
    python -m airflow_mlops.core.quality check data.parquet include/expectations/my.json
"""

from __future__ import annotations

from airflow_mlops.core.quality.cli import main
from airflow_mlops.core.quality.describe import describe_result, expected_text
from airflow_mlops.core.quality.gx import (
    RESULT_FORMATS,
    CompiledSuite,
    GxSource,
    MissingColumnError,
    check_columns,
    compile_suite,
    known_expectation_types,
    run_validation,
)
from airflow_mlops.core.quality.report import render_html
from airflow_mlops.core.quality.suggest import generate_suite, suggest_suite
from airflow_mlops.core.quality.suite import (
    DEFAULT_SEVERITY,
    SEVERITIES,
    SUITE_SUFFIXES_JSON,
    SUITE_SUFFIXES_YAML,
    ExpectationSpec,
    Suite,
    SuiteError,
    find_suite_file,
    load_suite,
    parse_suite,
    suite_to_dict,
    write_suite,
)
from airflow_mlops.core.quality.validate import validate_frame, validate_source, validate_table
from airflow_mlops.core.quality.verdict import (
    FAIL_ON,
    FailOn,
    blocks,
    failure_message,
    parse_fail_on,
    summarize,
    summary_metrics,
)

__all__ = [
    "DEFAULT_SEVERITY",
    "FAIL_ON",
    "RESULT_FORMATS",
    "SEVERITIES",
    "SUITE_SUFFIXES_JSON",
    "SUITE_SUFFIXES_YAML",
    "CompiledSuite",
    "ExpectationSpec",
    "FailOn",
    "GxSource",
    "MissingColumnError",
    "Suite",
    "SuiteError",
    "blocks",
    "check_columns",
    "compile_suite",
    "describe_result",
    "expected_text",
    "failure_message",
    "find_suite_file",
    "generate_suite",
    "known_expectation_types",
    "load_suite",
    "main",
    "parse_fail_on",
    "parse_suite",
    "render_html",
    "run_validation",
    "suggest_suite",
    "suite_to_dict",
    "summarize",
    "summary_metrics",
    "validate_frame",
    "validate_source",
    "validate_table",
    "write_suite",
]
