"""What the report page may serve: only report files under the report roots, for the right DAG."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest

from airflow_mlops.io import default_report_dir, write_report
from airflow_mlops.plugins.reports import ReportRefused, read_report, report_roots, resolve_report


class _Ti:
    dag_id, run_id, task_id, map_index = "training", "manual__2026-01-01T00:00:00+00:00", "gate", -1


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def report(home) -> str:
    """A gate report where the operator writes it by default."""
    return write_report(default_report_dir("quality", {"ti": _Ti()}), "validation.html", "<h1>ok</h1>")


def _refused(uri: str, roots: list[str], dag_id: str = "training") -> str:
    with pytest.raises(ReportRefused) as err:
        resolve_report(uri, roots, dag_id)
    assert err.value.status == 404
    return str(err.value)


def test_a_report_in_the_default_root_is_served_for_its_dag(home, report):
    found = resolve_report(report, report_roots(None), "training")
    assert found.local and found.media_type.startswith("text/html")
    assert found.location == os.path.realpath(report.removeprefix("file://"))
    assert read_report(found) == b"<h1>ok</h1>"
    # the same file is not another DAG's report, even for a user who may read that DAG
    assert "is not a report of DAG other" in _refused(report, report_roots(None), "other")


@pytest.mark.parametrize(
    "target",
    [
        "{home}/airflow.cfg",  # outside the roots
        "{root}/../airflow.cfg",  # traversal out of the root
        "{root}/quality/training/../../../airflow.cfg",
        "/etc/passwd",
        "{root}/quality/training/r/gate/validation.py",  # not a report file
        "relative/validation.html",
    ],
)
def test_files_outside_the_roots_or_not_reports_are_refused(home, report, target):
    (home / "airflow.cfg").write_text("[core]\nsecret = 1\n")
    uri = "file://" + target.format(home=home, root=home / "reports")
    message = _refused(uri, report_roots(None))
    assert "outside the report roots" in message or "not a report file" in message or "absolute" in message


def test_a_symbolic_link_out_of_a_root_is_refused(home, report):
    secret = home / "secret.html"
    secret.write_text("secret")
    link = Path(report.removeprefix("file://")).with_name("link.html")
    link.symlink_to(secret)
    assert "outside the report roots" in _refused(f"file://{link}", report_roots(None))


def test_a_configured_root_serves_any_dag_and_a_missing_file_says_where_it_is(home, tmp_path):
    shared = tmp_path / "shared-reports"
    uri = write_report(str(shared / "gate"), "validation.json", "{}")
    found = resolve_report(uri, report_roots(f" {shared} , s3://bucket/reports"), "whatever")
    assert found.media_type == "application/json" and read_report(found) == b"{}"
    missing = _refused(f"file://{shared}/gate/gone.html", report_roots(str(shared)))
    assert "not on this server's disk" in missing and "[mlops] report_roots" in missing


def test_object_storage_reports_under_a_configured_prefix_only():
    with fsspec.open("memory://reports/training/drift_report.html", "w") as fh:
        fh.write("<p>drift</p>")
    roots = report_roots("memory://reports")
    found = resolve_report("memory://reports/training/drift_report.html", roots, "training")
    assert not found.local and read_report(found) == b"<p>drift</p>"
    for uri in (
        "memory://reports-other/x.html",  # a sibling prefix is not inside the root
        "memory://reports/../secrets/x.html",
        "s3://bucket/reports/x.html",  # another bucket than the configured one
        "https://example.com/reports/x.html",  # never fetched by the server
    ):
        _refused(uri, roots)


def test_no_report_stored_is_a_plain_404():
    assert "stored no report" in _refused("", report_roots(None))
