"""Parse-time purity: the package, its operator/sensor/hook/trigger/link/backend/deploy modules
import nothing heavy (DESIGN.md). Checked in a fresh interpreter so nothing else preloads a module."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import airflow_mlops

HEAVY = (
    "pandas",
    "numpy",
    "mlflow",
    "great_expectations",
    "evidently",
    "sklearn",
    "boto3",
    "google.cloud",
    "azure.ai.ml",
    "scipy",
    "pyarrow",
    # lineage is extracted after a task ran: the OpenLineage client and the provider's extraction
    # stay out of parsing (Airflow's provider discovery may import its get_provider_info: harmless)
    "openlineage",
    "airflow.providers.openlineage.extractors",
    "airflow.providers.openlineage.plugins",
    "pyspark",
    "duckdb",
    "sqlglot",
)
PACKAGES = ("hooks", "operators", "sensors", "triggers", "links", "backends", "engines", "plugins", "deploy")


def _modules() -> list[str]:
    root = Path(airflow_mlops.__file__).parent
    names = [
        "airflow_mlops",
        "airflow_mlops.provider_info",
        "airflow_mlops.exceptions",
        "airflow_mlops.assets",
        "airflow_mlops.openlineage",
        "airflow_mlops.openlineage.builders",
        "airflow_mlops.openlineage.naming",
    ]
    for sub in PACKAGES:
        names.append(f"airflow_mlops.{sub}")
        names += [f"airflow_mlops.{sub}.{m.name}" for m in pkgutil.iter_modules([str(root / sub)])]
    return names


def test_every_public_module_imports_without_heavy_modules():
    modules = _modules()
    assert "airflow_mlops.operators.registry" in modules
    code = f"""
import importlib, json, sys
failed = {{}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = repr(err)
import airflow_mlops
for public in airflow_mlops.__all__:
    if public != "__version__":
        try:
            getattr(airflow_mlops, public)
        except Exception as err:
            failed["airflow_mlops." + public] = repr(err)
# constructing operators (outlet Assets included) must stay light too
from airflow_mlops.operators.registry import PromoteModelOperator
from airflow_mlops.sensors.drift import DataDriftSensor
PromoteModelOperator(task_id="p", model_name="m", version="1")
DataDriftSensor(task_id="d", reference="r.parquet", current="c.parquet", model_name="m")
# a bare namespace package (google.cloud made by an installed *-nspkg.pth) has no code: not heavy
heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {HEAVY!r})
               and getattr(sys.modules[m], "__file__", None) is not None)
print(json.dumps({{"failed": failed, "heavy": heavy}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["heavy"] == [], f"imported at module level: {result['heavy']}"


def test_provider_info_is_stdlib_only_and_lists_what_exists():
    from airflow_mlops.provider_info import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "airflow-mlops"
    import importlib

    for group in ("operators", "sensors", "hooks", "triggers"):
        for entry in info[group]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, cls = conn["hook-class-name"].rsplit(".", 1)
        hook = getattr(importlib.import_module(module), cls)
        assert hook.conn_type == conn["connection-type"]
    for link in info["extra-links"]:
        module, cls = link.rsplit(".", 1)
        getattr(importlib.import_module(module), cls)
    source = Path(airflow_mlops.__file__).with_name("provider_info.py").read_text()
    imports = [
        line.split()[1] for line in source.splitlines() if line.strip().startswith(("import ", "from "))
    ]
    # the version module is stdlib-only; the package root would reach every operator lazily
    assert set(imports) <= {"__future__", "airflow_mlops.version"}, imports
    json.dumps(info)


def test_provider_info_lists_every_operator_sensor_hook_and_trigger_module():
    """A module defining a public operator, sensor, hook or trigger class is declared (helpers such
    as ``hooks/forms.py`` or ``sensors/base.py`` need not be)."""
    import importlib
    import inspect

    from airflow.sdk import BaseHook, BaseOperator
    from airflow.triggers.base import BaseTrigger

    from airflow_mlops.provider_info import get_provider_info

    info = get_provider_info()
    root = Path(airflow_mlops.__file__).parent
    bases = {"operators": BaseOperator, "sensors": BaseOperator, "hooks": BaseHook, "triggers": BaseTrigger}
    for group, base in bases.items():
        listed = {module for entry in info[group] for module in entry["python-modules"]}
        defining = set()
        for path in sorted((root / group).glob("*.py")):
            if path.stem == "base":  # shared bases, not used on their own
                continue
            name = f"airflow_mlops.{group}.{path.stem}"
            module = importlib.import_module(name)
            if any(
                inspect.isclass(obj)
                and issubclass(obj, base)
                and obj.__module__ == name
                and not attr.startswith("_")
                for attr, obj in vars(module).items()
            ):
                defining.add(name)
        assert defining <= listed, f"{group} missing from provider_info: {sorted(defining - listed)}"
