"""The compat smoke, run by the Python of a fresh venv that holds the built wheel (not the checkout).

    <venv>/bin/python tests/compat/smoke.py --repo <checkout> --home <dir> --report <file.json>

Steps, each timed, the first failure ending the run (the report says which step and why):

1. ``versions``   -- what the venv resolved (Python, Airflow, MLflow, GX, Evidently, ...);
2. ``provider``   -- Airflow's ProvidersManager lists the package, imports both hooks, and the
   connection forms the UI builds carry every extra field that ``provider_info`` declares;
3. ``imports``    -- every module of ``airflow_mlops`` imports, from the wheel, in a fresh process,
   without importing pandas, numpy, mlflow, great_expectations, evidently, sklearn;
4. ``dags``       -- every reference DAG in ``dags/`` parses with no import error;
5. ``dag_run``    -- ``airflow dags test`` of ``dag_compat_smoke.py`` (quality gate, two local
   trainings, drift sensor, promote v1 -> promote v2 -> rollback to v1, then a check task);
   its log must hold no Great Expectations import chatter.

Standard library only at module level: it runs on every supported Python and Airflow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("pandas", "numpy", "mlflow", "great_expectations", "evidently", "sklearn")
GX_NOISE = "great_expectations._docs_decorators"
"""The logger whose INFO lines ("Skipping registering function ...") flooded the first gate log."""

BIN = Path(sys.executable).parent


class StepFailed(Exception):
    pass


def run(cmd: list[str], log: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd``, its output into ``log``; raise with the output's tail when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n--- stderr\n{proc.stderr}\n[exit {proc.returncode}]\n")
    if proc.returncode:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise StepFailed(f"{log.stem}: exit {proc.returncode} (full log {log}):\n{tail}")
    return proc


def python(code: str, log: Path, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh interpreter of this venv; it prints one JSON line last."""
    out = run([sys.executable, "-c", code], log, timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def versions() -> dict:
    """Every distribution in the venv, by its canonical name, and the Python."""
    from importlib.metadata import distributions

    found = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in distributions()}
    return {"python": ".".join(map(str, sys.version_info[:3])), **dict(sorted(found.items()))}


PROVIDER = """
import json
from airflow.providers_manager import ProvidersManager
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
from airflow_mlops.provider_info import get_provider_info

declared = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
# first, as the API server's connection form does (on Airflow 3.1 it stubs WTForms for the hooks)
forms = {m.connection_type: m for m in HookMetaService.hook_meta_data() if m.connection_type in declared}
pm = ProvidersManager()
info = pm.providers.get("airflow-mlops")
assert info is not None, "airflow-mlops is not a registered provider"
hooks = {t: (pm.hooks.get(t) and pm.hooks[t].hook_class_name) for t in declared}
assert all(hooks.values()), f"hooks that did not import: {hooks}"
missing = {
    t: sorted(set(c["conn-fields"]) - set(forms[t].extra_fields or {}))
    for t, c in declared.items()
}
assert not any(missing.values()), f"connection form fields missing from the UI: {missing}"
shown = {
    t: sorted(
        f for f in c["ui-field-behaviour"]["hidden-fields"]
        if f in ("host", "port", "login", "password")
        and not getattr(getattr(forms[t].standard_fields, f, None), "hidden", False)
    )
    for t, c in declared.items()
}
assert not any(shown.values()), f"fields the form should hide: {shown}"
print(json.dumps({"version": info.version, "hooks": hooks, "form_fields": {t: sorted(forms[t].extra_fields) for t in declared}}))
"""

IMPORTS = """
import importlib, json, pkgutil, sys
import airflow_mlops
failed = {}
names = [m.name for m in pkgutil.walk_packages(airflow_mlops.__path__, "airflow_mlops.")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{type(err).__name__}: {err}"
heavy = sorted(h for h in %r if h in sys.modules)
print(json.dumps({"modules": len(names), "failed": failed, "heavy": heavy, "file": airflow_mlops.__file__}))
"""

DAGS = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])  # examples stay out: AIRFLOW__CORE__LOAD_EXAMPLES=False
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: v.splitlines()[-1] for k, v in bag.import_errors.items()}}))
"""


def make_data(repo: Path, out: Path) -> None:
    """The demo stream's initial train/eval data, and one window after its drift."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mlops_demo_data", repo / "include" / "demo" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manifest = module.generate(out, days=2, drift_day=1, rows_per_day=1500, train_rows=1500, eval_rows=500)
    shutil.copy(manifest["windows"][1]["path"], out / "drifted.parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    repo, home = args.repo.resolve(), args.home.resolve()
    logs = home / "logs"
    dags_folder = home / "dags"
    for folder in (logs, dags_folder):
        folder.mkdir(parents=True, exist_ok=True)
    os.chdir(home)  # `python -c` puts the working directory first on sys.path: never the checkout
    for var in [v for v in os.environ if v.startswith(("AIRFLOW", "MLFLOW_"))] + ["PYTHONPATH"]:
        os.environ.pop(var, None)  # nothing of the calling environment: the venv's defaults only
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    report: dict = {"steps": {}, "ok": False}

    def step(name: str, fn):
        started = time.monotonic()
        try:
            report[name] = fn()
        finally:
            report["steps"][name] = round(time.monotonic() - started, 1)
            args.report.write_text(json.dumps(report, indent=2, sort_keys=True))

    def check_imports() -> dict:
        found = python(IMPORTS % (HEAVY,), logs / "imports.log")
        if found["failed"] or found["heavy"]:
            raise StepFailed(f"module imports: {found}")
        if not found["file"].startswith(sys.prefix):
            raise StepFailed(f"airflow_mlops came from {found['file']}, not from this venv's wheel")
        return found

    def check_dags() -> dict:
        out = run([sys.executable, "-c", DAGS, str(repo / "dags")], logs / "dags.log", 300).stdout
        found = json.loads(out.strip().splitlines()[-1])
        expected = {p.stem for p in (repo / "dags").glob("*.py") if not p.name.startswith("_")}
        if found["errors"] or set(found["dags"]) != expected:
            raise StepFailed(f"reference DAGs: expected {sorted(expected)}, got {found}")
        return found

    def dag_run() -> dict:
        data = home / "data"
        make_data(repo, data)
        shutil.copy(Path(__file__).with_name("dag_compat_smoke.py"), dags_folder / "dag_compat_smoke.py")
        os.environ.update({"MLOPS_SMOKE_DATA": str(data), "MLOPS_SMOKE_REPO": str(repo)})
        airflow = str(BIN / "airflow")
        run([airflow, "db", "migrate"], logs / "db-migrate.log", 600)
        started = time.monotonic()
        proc = run([airflow, "dags", "test", "mlops_compat_smoke"], logs / "dag-run.log", 900)
        output = proc.stdout + proc.stderr
        noise = sum(GX_NOISE in line for line in output.splitlines())
        if noise:
            raise StepFailed(f"{noise} lines of {GX_NOISE} in the task logs (see {logs / 'dag-run.log'})")
        outcome = [line for line in output.splitlines() if "compat smoke outcome:" in line]
        return {"seconds": round(time.monotonic() - started, 1), "outcome": outcome[-1] if outcome else None}

    try:
        step("versions", versions)
        step("provider", lambda: python(PROVIDER, logs / "provider.log"))
        step("imports", check_imports)
        step("dags", check_dags)
        step("dag_run", dag_run)
        report["ok"] = True
    except (StepFailed, subprocess.TimeoutExpired) as err:
        report["error"] = str(err)
    except Exception as err:  # a bug in a step: still a report, never a bare traceback only
        report["error"] = f"{type(err).__name__}: {err}"
    args.report.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
