"""Loading and writing suites (structure only: no GX here)."""

from __future__ import annotations

import json

import pytest

from airflow_mlops.core.quality.suite import (
    SuiteError,
    find_suite_file,
    load_suite,
    parse_suite,
    suite_to_dict,
    write_suite,
)


def test_load_json_file_with_severities(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "name": "orders",
                "meta": {"owner": "data"},
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
                    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0},
                     "severity": "warning"},
                    {"expectation_type": "expect_column_to_exist", "kwargs": {"column": "y", "batch_id": "old"},
                     "meta": {"severity": "info", "why": "legacy layout"}},
                ],
            }
        )
    )  # fmt: skip
    suite = load_suite(str(path))
    assert suite.name == "orders" and suite.source == str(path) and suite.meta == {"owner": "data"}
    assert [e.severity for e in suite.expectations] == ["critical", "warning", "info"]
    assert [e.position for e in suite.expectations] == [1, 2, 3]
    legacy = suite.expectations[2]
    assert legacy.type == "expect_column_to_exist"
    assert legacy.kwargs == {"column": "y"}  # a stale batch_id from another context is dropped
    assert legacy.meta == {"why": "legacy layout"}
    # suite_to_dict writes the GX 1.x layout that load_suite reads back unchanged
    again = parse_suite(suite_to_dict(suite), source="x", name="x")
    assert [(e.type, e.kwargs, e.severity) for e in again.expectations] == [
        (e.type, e.kwargs, e.severity) for e in suite.expectations
    ]


def test_load_yaml_file_and_inline_list(tmp_path):
    path = tmp_path / "s.yml"
    path.write_text(
        "expectations:\n"
        "  - type: expect_table_row_count_to_be_between\n"
        "    kwargs: {min_value: 10}\n"
        "    severity: WARNING\n"
    )
    suite = load_suite(path)
    assert suite.name == "s"
    assert suite.expectations[0].kwargs == {"min_value": 10}
    assert suite.expectations[0].severity == "warning"

    inline = load_suite([{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}])
    assert inline.source == "<inline suite>"
    assert inline.expectations[0].severity == "critical"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"expectations": [', ".json", "is not valid JSON: Expecting value at line 1 column 19"),
        ("expectations: [a, b\n", ".yaml", "is not valid YAML"),
        ("", ".yaml", "is empty"),
        ('{"name": "x"}', ".json", "has no 'expectations' list"),
        ('{"expectations": []}', ".json", "has no expectations"),
        ('{"expectations": {"a": 1}}', ".json", "'expectations' must be a list"),
        ('[{"kwargs": {}}]', ".json", "expectation #1: missing 'type'"),
        (
            '[{"type": "expect_x", "kwargs": [1]}]',
            ".json",
            "expectation #1 (expect_x): 'kwargs' must be a dict",
        ),
        (
            '[{"type": "expect_x", "severity": "fatal"}]',
            ".json",
            "severity 'fatal' is not one of info, warning, critical",
        ),
        ('["expect_x"]', ".json", "expectation #1: must be a dict"),
    ],
)
def test_bad_suite_files_name_the_file(tmp_path, content, suffix, message):
    path = tmp_path / f"suite{suffix}"
    path.write_text(content)
    with pytest.raises(SuiteError) as err:
        load_suite(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_suite_file_and_wrong_suite_type(tmp_path):
    with pytest.raises(SuiteError, match="suite file not found: .*nope.json"):
        load_suite(str(tmp_path / "nope.json"))
    with pytest.raises(SuiteError, match="got int"):
        load_suite(3)


def test_find_suite_file_looks_in_the_folders_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "dags", tmp_path / "searchpath"
    for folder in (first, second):
        folder.mkdir()
        (folder / "s.json").write_text("[]")
    assert find_suite_file("s.json", [str(first), str(second)]) == str(first / "s.json")
    assert find_suite_file("s.json", [str(tmp_path / "none"), str(second)]) == str(second / "s.json")
    # a URL, an absolute path, or a path found from the working directory is taken as it is
    assert find_suite_file("s3://bucket/s.json", [str(first)]) == "s3://bucket/s.json"
    assert find_suite_file(str(tmp_path / "gone.json"), [str(first)]) == str(tmp_path / "gone.json")
    assert find_suite_file("dags/s.json", [str(second)]) == "dags/s.json"


def test_find_suite_file_names_every_place_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError) as err:
        find_suite_file("s.json", ["/dags", "/extra"])
    assert str(err.value) == (
        f"suite file not found: s.json (looked in: {tmp_path / 's.json'}, /dags/s.json, /extra/s.json)"
    )


def test_write_suite_round_trips_through_load_suite(tmp_path):
    suite = {"name": "s", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}
    for name in ("s.json", "nested/s.yml"):
        path = write_suite(suite, tmp_path / name)
        assert path == str(tmp_path / name)
        loaded = load_suite(path)
        assert (loaded.name, loaded.expectations[0].kwargs) == ("s", {"column": "a"})
