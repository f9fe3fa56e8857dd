"""Compiling and running suites against the real Great Expectations 1.x (imported once per session)."""

from __future__ import annotations

import pytest

from airflow_mlops.core.quality.gx import MissingColumnError, check_columns, compile_suite, run_validation
from airflow_mlops.core.quality.suggest import suggest_suite
from airflow_mlops.core.quality.suite import SuiteError, load_suite, parse_suite
from airflow_mlops.core.quality.verdict import summarize
from tests.unit.core.quality.samples import reference_frame


def test_unknown_type_names_it_and_suggests():
    suite = load_suite([
        {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
        {"type": "expect_column_values_to_not_be_nul", "kwargs": {"column": "a"}},
    ])  # fmt: skip
    with pytest.raises(SuiteError) as err:
        compile_suite(suite)
    assert str(err.value).startswith(
        "suite <inline suite>, expectation #2 (expect_column_values_to_not_be_nul): unknown expectation type "
        "'expect_column_values_to_not_be_nul'; did you mean expect_column_values_to_not_be_null, "
    )


def test_bad_kwargs_name_the_expectation():
    suite = load_suite(
        [{"type": "expect_column_values_to_be_between", "kwargs": {"colum": "a", "min_value": 1}}]
    )
    with pytest.raises(SuiteError, match=r"expectation #1 \(expect_column_values_to_be_between\): invalid kwargs "
                       r"\{'colum': 'a', 'min_value': 1\}: .*column field required"):  # fmt: skip
        compile_suite(suite)


def test_domain_columns_and_missing_column_error():
    suite = load_suite([
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
        {"type": "expect_column_pair_values_to_be_equal", "kwargs": {"column_A": "a", "column_B": "b"}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "c"]}},
        # not about these columns: a missing one is a failed expectation, not a broken suite
        {"type": "expect_column_to_exist", "kwargs": {"column": "z"}},
        {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": ["y"]}},
    ])  # fmt: skip
    compiled = compile_suite(suite)
    assert {c: [s.position for s in specs] for c, specs in compiled.domain_columns().items()} == {
        "a": [1, 2, 3], "b": [2], "c": [3],
    }  # fmt: skip
    check_columns(compiled, ["a", "b", "c"], "d.parquet")
    with pytest.raises(MissingColumnError) as err:
        check_columns(compiled, ["a", "x"], "/data/d.parquet")
    assert err.value.missing == ["b", "c"]
    assert str(err.value).startswith(
        "suite <inline suite> names columns that data /data/d.parquet does not have: column 'b' (named by "
        "expectation #2 (expect_column_pair_values_to_be_equal)); column 'c' (named by expectation #3 "
        "(expect_compound_columns_to_be_unique)). Data columns: ['a', 'x']"
    )


def test_generated_suite_passes_its_reference_and_catches_breakage():
    df = reference_frame()
    suite = parse_suite(suggest_suite(df, name="ref"))
    compiled = compile_suite(suite)
    result = run_validation(df, compiled)
    summary = summarize(result, fail_on="warning", row_count=len(df))
    assert summary["failed"] == [] and summary["success"] is True
    assert summary["evaluated"] == len(suite.expectations)
    # results come back in suite order, each with its position
    assert [r["position"] for r in result["results"]] == list(range(1, len(suite.expectations) + 1))
    assert [r["expectation_config"]["type"] for r in result["results"]] == [
        e.type for e in suite.expectations
    ]

    broken = df.copy()
    broken.loc[:9, "age"] = -40  # 3.3% of rows, more than the 1% "mostly" allows
    broken["score"] = broken["score"].astype(str)  # numbers arriving as text
    broken.loc[0, "label"] = None
    result = run_validation(broken, compiled)
    summary = summarize(result, fail_on="critical")
    assert not summary["success"]
    messages = {(f["column"], f["expectation"]): f["message"] for f in summary["failed"]}
    assert messages[("age", "expect_column_values_to_be_between")].startswith(
        "column 'age': 10 of 300 values (3.3%) outside ["
    )
    assert messages[("age", "expect_column_values_to_be_between")].endswith(
        "(at most 1.0% allowed); unexpected sample: [-40]"
    )
    assert messages[("score", "expect_column_values_to_be_in_type_list")].startswith(
        "column 'score': 300 of 300 values (100.0%) have a type not in ['int8',"
    )
    assert "could not be evaluated" in messages[("score", "expect_column_values_to_be_between")]
    assert (
        messages[("label", "expect_column_values_to_not_be_null")]
        == "column 'label': 1 of 300 values (0.33%) are null"
    )


def test_severity_reaches_gx_result():
    df = reference_frame()
    suite = load_suite([
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "age", "max_value": 1}, "severity": "warning"},
        {"type": "expect_column_min_to_be_between", "kwargs": {"column": "age", "min_value": 1000},
         "meta": {"severity": "info"}},
    ])  # fmt: skip
    result = run_validation(df, compile_suite(suite), "BASIC")
    assert [r["expectation_config"]["severity"] for r in result["results"]] == ["warning", "info"]
    summary = summarize(result, fail_on="critical")
    assert summary["success"] is True and len(summary["failed"]) == 2


def test_missing_column_error_suggests_a_close_data_column():
    compiled = compile_suite(
        load_suite([{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "agee"}}])
    )
    with pytest.raises(MissingColumnError) as err:
        check_columns(compiled, ["age", "region"], "d.parquet")
    assert (
        "column 'agee' (named by expectation #1 (expect_column_values_to_not_be_null); did you mean 'age'?)"
        in str(err.value)
    )
