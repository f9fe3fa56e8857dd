"""The helpers every backend shares (backends/base.py): config keys, status words, re-run names,
the entrypoint contract's checks, the shipped code, and the handle built from a remote state."""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest

from airflow_mlops.backends import base
from airflow_mlops.backends.base import JobHandle, TrainingBackend
from airflow_mlops.exceptions import DataInputError, MissingExtraError, TrainingJobFailed

LOG = logging.getLogger("test.base")


class Remote(TrainingBackend):
    """The smallest remote backend: the interface's abstract methods do nothing."""

    name = "remote"
    title = "Remote"
    job_noun = "Remote job"
    config_keys = frozenset({"instance_type", "region"})

    def submit(self, spec):  # pragma: no cover - not called
        raise NotImplementedError

    def poll(self, handle):  # pragma: no cover - not called
        raise NotImplementedError

    def fetch_output(self, handle, local_dir):  # pragma: no cover - not called
        raise NotImplementedError


def test_unknown_config_key_is_named_with_the_closest_and_all_valid_keys():
    with pytest.raises(ValueError) as err:
        Remote({"instance_typ": "big", "colour": "red"}, LOG)
    assert str(err.value) == (
        "backend_config: unknown Remote key(s) ['colour', 'instance_typ'] "
        "(did you mean 'instance_typ' -> 'instance_type'?); valid keys: ['instance_type', 'region']"
    )


def test_missing_extra_is_named_from_the_class():
    class Cloud(Remote):
        extra = "cloudy"
        requires = ("a_cloud_sdk_that_is_not_installed",)

    with pytest.raises(MissingExtraError, match=r"pip install 'airflow-mlops\[cloudy\]'") as err:
        Cloud({}, LOG)
    assert err.value.extra == "cloudy"
    assert "a_cloud_sdk_that_is_not_installed" in str(err.value)


@pytest.mark.parametrize(
    ("remote", "status"),
    [
        ("Done", "succeeded"),
        ("Broken", "failed"),
        ("Gone", "cancelled"),
        ("Queued", "running"),
        (None, "running"),
    ],
)
def test_job_status_reads_the_triggers_map(remote, status):
    terminal = {"Done": "success", "Broken": "failed", "Gone": "cancelled"}
    assert base.job_status(remote, terminal) == status


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("failed", "Remote job j-1 ended Broken: disk full (https://console/j-1)"),
        ("cancelled", "Remote job j-1 was cancelled"),
        ("succeeded", "Remote job j-1 completed"),
        ("running", None),
    ],
)
def test_job_handle_says_how_the_job_ended(status, message):
    previous = JobHandle(backend="remote", job_id="j-1", details={"kept": 1, "state": "Queued"})
    handle = Remote({}, LOG).job_handle(
        "j-1",
        "Broken",
        status,
        console_url="https://console/j-1",
        details={"state": "Broken"},
        previous=previous,
        reason=lambda: "disk full",
    )
    assert (handle.backend, handle.status, handle.message) == ("remote", status, message)
    assert handle.details == {"kept": 1, "state": "Broken"}


def test_job_handle_asks_the_reason_only_for_a_failure():
    asked: list[str] = []

    def reason() -> str | None:
        asked.append("asked")
        return None

    backend = Remote({}, LOG)
    backend.job_handle("j", "Done", "succeeded", console_url=None, details={}, reason=reason)
    assert asked == []
    failed = backend.job_handle("j", "Broken", "failed", console_url=None, details={}, reason=reason)
    assert failed.message == "Remote job j ended Broken: no reason given" and asked == ["asked"]


def test_rerun_names_fit_the_limit():
    assert base.rerun_name("train-abc", 2, 63) == "train-abc-r2"
    long = "a" * 60 + "-bcd"
    assert base.rerun_name(long, 12, 63) == "a" * 59 + "-r12"  # cut, trailing "-" dropped
    assert len(base.rerun_name("x" * 63, 50, 63)) == 63


def test_reattach_or_rename_skips_failed_jobs_and_stops_at_the_limit():
    jobs: dict[str, tuple[Any, str]] = {
        "job": ("job#1", "failed"),
        "job-r2": ("job#2", "cancelled"),
        "job-r3": ("job#3", "running"),
    }
    backend = Remote({}, LOG)
    assert backend.reattach_or_rename("job", jobs.get, 63) == ("job-r3", "job#3")
    jobs["job-r3"] = ("job#3", "failed")
    assert backend.reattach_or_rename("job", jobs.get, 63) == ("job-r4", None)
    with pytest.raises(TrainingJobFailed, match=r"50 Remote jobs named job\[-rN\] already failed"):
        backend.reattach_or_rename("job", lambda name: ("j", "failed"), 63)


def test_require_entrypoint_and_output(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("")
    spec = base.TrainingJobSpec(entrypoint=str(script), train_data="d")
    assert base.require_entrypoint(spec) == str(script)
    with pytest.raises(DataInputError, match=r"training entrypoint '.*nope.py' is not a file"):
        base.require_entrypoint(base.TrainingJobSpec(entrypoint=str(tmp_path / "nope.py"), train_data="d"))

    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    with pytest.raises(
        TrainingJobFailed, match=r"s3://b/k has no metrics.json: .* <SM_MODEL_DIR>/metrics.json"
    ):
        base.require_output(str(out), "s3://b/k", "<SM_MODEL_DIR>")
    (out / "metrics.json").write_text("{}")
    assert base.require_output(str(out), "s3://b/k") == str(out)
    with pytest.raises(TrainingJobFailed, match="has no model and no metrics.json"):
        base.require_output(str(tmp_path / "empty"), "the output")


def test_shipped_code_leaves_caches_out_and_packs_reproducibly(tmp_path: Path):
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pkg" / "m.py").write_text("X = 1\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n")
    (tmp_path / "train.pyc").write_bytes(b"\0")
    (tmp_path / "train.py").write_text("print(1)\n")
    files = list(base.source_files(str(tmp_path)))
    assert files == [("train.py", b"print(1)\n"), ("pkg/m.py", b"X = 1\n")]

    archive = base.tar_gz(files)
    assert archive == base.tar_gz(files)
    assert gzip.decompress(archive)  # a plain gzip stream, header mtime zero
    assert archive[4:8] == bytes(4)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getmembers()
        assert [(m.name, m.mode, m.mtime, m.uid) for m in members] == [
            ("train.py", 0o644, 0, 0),
            ("pkg/m.py", 0o644, 0, 0),
        ]
        assert tar.extractfile("pkg/m.py").read() == b"X = 1\n"


def test_get_backend_names_the_valid_backends():
    with pytest.raises(
        ValueError, match=r"unknown training backend 'kubernetes'; choose one of \['azure_ml'"
    ):
        base.get_backend("kubernetes", {}, LOG)
