"""Suite suggestion from a reference dataset (pandas, no GX)."""

from __future__ import annotations

import json

import pytest

from airflow_mlops.core.quality.suggest import generate_suite, suggest_suite
from airflow_mlops.core.quality.suite import load_suite
from tests.unit.core.quality.samples import reference_frame


def test_suggest_suite_describes_reference():
    df = reference_frame()
    suite = suggest_suite(df, name="ref", reference="ref.parquet")
    assert suite["name"] == "ref"
    assert suite["meta"]["rows"] == 300 and suite["meta"]["reference"] == "ref.parquet"
    by = {}
    for e in suite["expectations"]:
        by.setdefault((e["type"], e["kwargs"].get("column")), e)
    assert by[("expect_table_columns_to_match_set", None)]["kwargs"]["column_set"] == list(df.columns)
    age = by[("expect_column_values_to_be_between", "age")]
    lo, hi = int(df.age.min()), int(df.age.max())
    span = hi - lo
    assert age["kwargs"]["min_value"] <= lo - 0.1 * span and age["kwargs"]["max_value"] >= hi + 0.1 * span
    assert isinstance(age["kwargs"]["min_value"], int) and age["severity"] == "critical"
    score = by[("expect_column_values_to_be_between", "score")]["kwargs"]
    assert score["min_value"] < df.score.min() and score["max_value"] > df.score.max()
    assert by[("expect_column_values_to_be_in_set", "city")]["kwargs"]["value_set"] == ["lyon", "paris"]
    assert by[("expect_column_values_to_be_in_set", "seg")]["kwargs"]["value_set"] == ["a", "b"]
    assert ("expect_column_values_to_be_in_set", "label") not in by  # numeric: a range, not a set
    assert ("expect_column_values_to_be_in_set", "free_text") not in by  # too many distinct values
    assert by[("expect_column_values_to_not_be_null", "age")]["severity"] == "critical"
    opt_null = by[("expect_column_values_to_not_be_null", "opt")]
    assert opt_null["severity"] == "warning" and opt_null["kwargs"]["mostly"] == pytest.approx(
        1 - (0.1 * 2 + 0.01)
    )
    assert by[("expect_column_values_to_be_in_type_list", "flag")]["kwargs"]["type_list"] == [
        "bool",
        "boolean",
    ]
    assert ("expect_column_values_to_be_in_type_list", "seg") not in by
    json.dumps(suite)


def test_suggest_suite_rejects_empty_data():
    with pytest.raises(ValueError, match="empty dataset"):
        suggest_suite(reference_frame().iloc[:0], reference="x.parquet")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_generate_suite_from_uri_writes_loadable_file(tmp_path, suffix):
    data = tmp_path / "ref.parquet"
    reference_frame().to_parquet(data)
    out = tmp_path / "suites" / f"my_suite{suffix}"
    suite = generate_suite(str(data), out)
    assert suite["name"] == "my_suite" and suite["meta"]["reference"] == str(data)
    loaded = load_suite(str(out))
    assert loaded.name == "my_suite"
    assert len(loaded.expectations) == len(suite["expectations"])
    assert {e.severity for e in loaded.expectations} == {"critical", "warning"}
