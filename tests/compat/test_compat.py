"""Compat smoke: the built wheel in fresh venvs on the lowest and the newest supported versions.

Each row of ``MATRIX`` is installed the way ``docs/guide/install.md`` tells users to install:

1. Airflow alone, with what its constraints file pins. Those files live on GitHub, which CI cannot
   reach; they are generated on the day of the release from the newest versions on PyPI, so
   ``uv pip install --exclude-newer <release time>`` resolves the same set (checked for 3.2.2
   against the pins the ecosystem audit found: svcs 25.1.0, fastapi 0.136.3);
2. then the wheel next to ``apache-airflow==<that version>``, without constraints. The ``lowest``
   row also pins every dependency of ``pyproject.toml`` to its floor (``pandas>=2.1`` becomes
   ``pandas==2.1``): the floors are read from the metadata, so a floor is never declared untested.
   The ``newest`` row upgrades every one of them to the newest release the resolver allows today
   (including those Airflow's install already holds, such as the common-compat provider).

``tests/compat/smoke.py`` then runs in the venv (provider registration and connection forms, every
module imports, every reference DAG parses, a DAG run: quality gate, two trainings, drift sensor,
promote -> promote -> rollback). The rows run in parallel; uv's cache makes the installs links, not
downloads. On failure the row's logs are copied to ``tests/artifacts/compat/<row>/``.

In a whole-suite run the wheel and the rows start in the background as soon as the tests are
collected (``tests/conftest.py``), at low CPU priority (``nice``), and these tests run last: the
installs overlap the other tiers instead of adding two minutes to the run.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = [pytest.mark.compat, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts" / "compat"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Row:
    name: str
    python: str
    airflow: str
    airflow_released: str
    """Upload time of that Airflow release on PyPI: its constraints are what PyPI held then."""
    floors: bool
    """Pin every dependency to the floor ``pyproject.toml`` declares (else: the newest)."""


MATRIX = (
    Row("lowest", python="3.10", airflow="3.1.3", airflow_released="2025-11-14T13:43:16Z", floors=True),
    Row("newest", python="3.13", airflow="3.3.2", airflow_released="2026-09-17T08:38:26Z", floors=False),
)


EXTRAS = ("openlineage",)
"""Extras every row installs: those that add modules of their own (``airflow_mlops.openlineage``
imports the OpenLineage client), so that every module can be imported. The cloud extras add none:
their backends import their SDKs only when they run."""


def floors() -> dict[str, str]:
    """``{distribution: floor}`` of every dependency (core, and of ``EXTRAS``) that declares one
    (``>=X``)."""
    found = {}
    optional = PYPROJECT.get("optional-dependencies", {})
    for line in [*PYPROJECT["dependencies"], *(r for extra in EXTRAS for r in optional[extra])]:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        if lows:
            found[canonicalize_name(req.name)] = lows[0]
    return found


def find_python(minor: str) -> str:
    """An interpreter of Python ``minor`` on this machine: PATH, pyenv, the usual prefixes, uv's."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python{minor}")]
    candidates += sorted(glob.glob(f"{pyenv}/versions/{minor}.*/bin/python{minor}"), reverse=True)
    candidates += [f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
    found = subprocess.run(
        [sys.executable, "-m", "uv", "python", "find", "--no-project", minor], capture_output=True, text=True
    )
    candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == minor:
            return candidate
    pytest.fail(
        f"no Python {minor} on this machine (looked on PATH, in {pyenv}/versions, /usr/bin, /usr/local/bin "
        f"and uv's interpreters): the compat smoke needs it; install it (e.g. pyenv install {minor})"
    )


def venv_env() -> dict[str, str]:
    """The calling environment without what would leak the checkout or this session into the venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "MLFLOW_", "VIRTUAL_ENV")) and k not in ("PYTHONPATH", "PYTHONHOME")
    }
    # the venv's first imports write bytecode that its later processes (CLI, tasks) reuse
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


NICE = ["nice", "-n", "10"] if shutil.which("nice") else []
"""The smoke's processes yield the CPU to the tests that run meanwhile (two cores here)."""


def _uv(args: list[str], log: Path, timeout: float = 900) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [*NICE, sys.executable, "-m", "uv", *args],
        capture_output=True,
        text=True,
        env=venv_env(),
        timeout=timeout,
    )
    with log.open("a") as fh:
        fh.write(f"$ uv {' '.join(args)}  [{time.monotonic() - started:.1f} s, exit {proc.returncode}]\n")
        fh.write(proc.stdout + proc.stderr + "\n")
    if proc.returncode:
        raise RuntimeError(f"uv {' '.join(args[:3])} failed (log {log}):\n{proc.stderr[-3000:]}")


def run_row(row: Row, wheel: Path, root: Path) -> dict:
    """Install ``row`` into a fresh venv under ``root`` and run the smoke there; its report."""
    root.mkdir(parents=True)
    venv, home, log = root / "venv", root / "home", root / "install.log"
    python = venv / "bin" / "python"
    timings: dict[str, float] = {}
    report: dict = {"row": row.name, "ok": False}
    try:
        started = time.monotonic()
        _uv(["venv", "-q", "--python", find_python(row.python), str(venv)], log)
        cutoff = dt.datetime.fromisoformat(row.airflow_released.replace("Z", "+00:00")) + dt.timedelta(
            hours=1
        )
        _uv(
            ["pip", "install", "--python", str(python), "--exclude-newer", cutoff.isoformat()]
            + [f"apache-airflow=={row.airflow}"],
            log,
        )
        ours = [name for name in floors() if name != "apache-airflow"]
        if row.floors:  # every dependency at its floor
            choice = [f"{name}=={floors()[name]}" for name in ours]
        else:  # every dependency at its newest, also those Airflow's own install already holds
            choice = [arg for name in ours for arg in ("--upgrade-package", name)]
        package = f"airflow-mlops[{','.join(EXTRAS)}] @ {wheel.as_uri()}"
        _uv(
            ["pip", "install", "--python", str(python), f"apache-airflow=={row.airflow}", package, *choice],
            log,
        )
        timings["install"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        smoke = [*NICE, str(python), str(REPO / "tests" / "compat" / "smoke.py"), "--repo", str(REPO)]
        smoke += ["--home", str(home), "--report", str(root / "report.json")]
        proc = subprocess.run(smoke, capture_output=True, text=True, env=venv_env(), cwd=root, timeout=1800)
        (root / "smoke.log").write_text(proc.stdout + proc.stderr)
        timings["smoke"] = round(time.monotonic() - started, 1)
        report = json.loads((root / "report.json").read_text())
    except Exception as err:  # an install or interpreter failure is this row's failure, with its log
        report["error"] = f"{type(err).__name__}: {err}"
    report["timings"] = timings
    (root / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    if not report.get("ok"):
        keep = ARTIFACTS / row.name
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(
            root, keep, ignore=shutil.ignore_patterns("venv", "*.db", "data", "mlruns", "mlartifacts")
        )
    return report


def build_wheel(dist: Path) -> Path:
    subprocess.run(
        [*NICE, sys.executable, "-m", "uv", "build", "-q", "--wheel", "-o", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return next(dist.glob("airflow_mlops-*.whl"))


class Smoke:
    """The wheel, then every row at once, each in a daemon thread (an interrupted session does not
    wait for them); :meth:`reports` waits for the result."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mlops-compat-"))
        self.found: dict[str, dict] = {}
        self.error: BaseException | None = None
        self.started, self.cpu = time.monotonic(), _children_cpu()
        self.thread = threading.Thread(target=self._run, name="compat-smoke", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            wheel = build_wheel(self.root / "dist")
            rows = [
                threading.Thread(
                    target=lambda row=row: self.found.__setitem__(
                        row.name, run_row(row, wheel, self.root / row.name)
                    ),
                    daemon=True,
                )
                for row in MATRIX
            ]
            for thread in rows:
                thread.start()
            for thread in rows:
                thread.join()
        except BaseException as err:  # reported by reports()
            self.error = err

    def reports(self) -> dict[str, dict]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        # CPU time beside wall time: on a shared machine the wall clock mostly measures the neighbours
        print(
            f"compat: {len(MATRIX)} rows at once: {time.monotonic() - self.started:.0f} s wall since the "
            f"start, {_children_cpu() - self.cpu:.0f} s CPU of finished processes, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        return self.found


_SMOKE: list[Smoke] = []


def start_smoke() -> Smoke:
    """Start the smoke now unless it has started (``tests/conftest.py`` calls this once the tests
    are collected, when this tier is among them)."""
    if not _SMOKE:
        _SMOKE.append(Smoke())
    return _SMOKE[0]


@pytest.fixture(scope="session")
def reports() -> Iterator[dict[str, dict]]:
    """Every row's report."""
    smoke = start_smoke()
    yield smoke.reports()
    shutil.rmtree(smoke.root, ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_matrix_spans_what_the_metadata_declares():
    """The lowest row is the declared floor of Airflow and Python, the newest row the newest
    Python the classifiers name, and the classifiers list exactly the minors in between."""
    lowest, newest = MATRIX[0], MATRIX[-1]
    assert floors()["apache-airflow"] == lowest.airflow
    python_floor = re.fullmatch(r">=(\d+\.\d+)(,<(\d+\.\d+))?", PYPROJECT["requires-python"])
    assert python_floor, PYPROJECT["requires-python"]
    assert python_floor.group(1) == lowest.python
    minors = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["classifiers"] if re.search(r"Python :: 3\.\d+$", c)]
    low, high = (int(v.split(".")[1]) for v in (lowest.python, newest.python))
    assert minors == [f"3.{m}" for m in range(low, high + 1)]
    if python_floor.group(3):  # an upper bound, when declared, is just above the newest tested
        assert python_floor.group(3) == f"3.{high + 1}"


@pytest.mark.parametrize("row", MATRIX, ids=[row.name for row in MATRIX])
def test_smoke(row: Row, reports: dict[str, dict]):
    report = reports[row.name]
    versions = report.get("versions", {})
    summary = {k: versions.get(k) for k in ("python", *floors())}
    print(f"compat {row.name}: {summary} steps {report.get('steps')} timings {report.get('timings')}")
    assert report.get("ok"), (
        f"compat smoke {row.name} failed (logs in {ARTIFACTS / row.name}): {report.get('error')}"
    )
    assert versions["apache-airflow"] == row.airflow
    assert versions["python"].rsplit(".", 1)[0] == row.python
    if row.floors:
        off = {
            name: versions.get(name)
            for name, floor in floors().items()
            if versions.get(name) is None or Version(versions[name]) != Version(floor)
        }
        assert not off, f"not installed at the floor pyproject.toml declares: {off} (floors: {floors()})"
