"""io.py: tables for operators (read problems become task failures) and report files."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import fsspec
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core.data import content_hash
from airflow_mlops.exceptions import DataInputError
from airflow_mlops.io import default_report_dir, hash_table, load_table, write_report


def _context(run_id: str = "manual__2025-01-01T00:00:00+00:00", map_index: int | None = -1) -> dict:
    return {"ti": SimpleNamespace(dag_id="ct", run_id=run_id, task_id="gate", map_index=map_index)}


def test_load_table_reads_and_a_local_path_needs_no_connection(tmp_path: Path):
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "x.csv", index=False)
    # a connection id only matters for object storage: no lookup happens for a local file
    assert load_table(str(tmp_path / "x.csv"), conn_id="no_such_connection")["a"].tolist() == [1, 2]
    assert load_table(tmp_path / "x.csv", columns=["a"]).shape == (2, 1)


def test_load_table_turns_read_errors_into_task_failures_naming_the_input(tmp_path: Path):
    with pytest.raises(DataInputError, match=f"^eval_data: data not found: {tmp_path}/missing.csv$") as err:
        load_table(str(tmp_path / "missing.csv"), what="eval_data")
    assert isinstance(err.value, AirflowFailException)  # bad data does not fix itself on retry
    (tmp_path / "empty.csv").write_text("a\n")
    with pytest.raises(DataInputError, match=f"^data: data is empty \\(0 rows\\): {tmp_path}/empty.csv$"):
        load_table(str(tmp_path / "empty.csv"))


def test_hash_table_is_the_content_hash_and_fails_naming_the_input(tmp_path: Path):
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert hash_table(str(tmp_path / "x.csv")) == content_hash(str(tmp_path / "x.csv"))
    with pytest.raises(DataInputError, match=f"^data not found: {tmp_path}/gone$"):
        hash_table(str(tmp_path / "gone"))


def test_default_report_dir_has_portable_folder_names(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_report_dir("quality", _context()) == os.path.join(
        tmp_path, "reports", "quality", "ct", "manual__2025-01-01T00_00_00_00_00", "gate"
    )
    assert default_report_dir("drift", _context(map_index=3)).endswith(
        os.path.join("drift", "ct", "manual__2025-01-01T00_00_00_00_00", "gate.3")
    )
    assert default_report_dir("drift", _context(map_index=None)).endswith(os.sep + "gate")


@pytest.mark.parametrize(
    ("run_id", "folder"), [(".", "_"), ("..", "__"), ("a/../b", "a_.._b"), ("x y", "x_y")]
)
def test_default_report_dir_never_steps_out_of_its_folder(
    tmp_path: Path, monkeypatch, run_id: str, folder: str
):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    path = default_report_dir("quality", _context(run_id=run_id))
    assert path == os.path.join(tmp_path, "reports", "quality", "ct", folder, "gate")
    assert os.path.normpath(path) == path


def test_default_report_dir_without_airflow_home(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_report_dir("quality", _context(run_id="r")) == os.path.join(
        tmp_path, "airflow", "reports", "quality", "ct", "r", "gate"
    )


def test_write_report_to_a_local_folder_returns_a_file_uri(tmp_path: Path, monkeypatch):
    uri = write_report(str(tmp_path / "new" / "folder"), "report.html", "<p>ok</p>")
    assert uri == f"file://{tmp_path}/new/folder/report.html"
    assert (tmp_path / "new" / "folder" / "report.html").read_text() == "<p>ok</p>"

    assert write_report(f"file://{tmp_path}/other/", "r.json", "{}") == f"file://{tmp_path}/other/r.json"
    assert (tmp_path / "other" / "r.json").read_text() == "{}"

    monkeypatch.chdir(tmp_path)  # a relative folder still gives an absolute URI
    assert write_report("rel", "r.txt", "é") == f"file://{tmp_path}/rel/r.txt"
    assert (tmp_path / "rel" / "r.txt").read_text(encoding="utf-8") == "é"


def test_write_report_to_an_fsspec_url_returns_the_url(memory_folder: str):
    uri = write_report(f"{memory_folder}/run/", "drift_report.html", "<html>é</html>")
    assert uri == f"{memory_folder}/run/drift_report.html"
    with fsspec.open(uri, "r", encoding="utf-8") as fh:
        assert fh.read() == "<html>é</html>"


def test_engine_options_are_declared_with_the_codes_defaults():
    from airflow_mlops.engines import duckdb as duckdb_engine
    from airflow_mlops.io import AUTO_DUCKDB_ROWS
    from airflow_mlops.provider_info import get_provider_info

    options = get_provider_info()["config"]["mlops"]["options"]
    assert int(options["duckdb_auto_rows"]["default"]) == AUTO_DUCKDB_ROWS
    assert options["duckdb_memory_limit"]["default"] == duckdb_engine.DEFAULT_MEMORY_LIMIT
    assert int(options["duckdb_threads"]["default"]) == duckdb_engine.DEFAULT_THREADS
