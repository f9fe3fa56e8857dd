"""Promotion latency: the crash-consistent registry protocol vs the one it replaced (f159d22).

One real ``mlflow server`` (SQLite store) on 127.0.0.1. The old protocol is loaded from git
(``git show f159d22:airflow_mlops/core/registry.py``) into a temporary module; each side promotes
its own model from v1 to v2, v3, ... with ``expected_current`` (the reference DAG's call), the two
sides alternating so that both see the same load on a shared machine. Wall time per promotion is
what a task waits; the median of each side and their ratio are printed (target <= 1.5x), with
the number of registry calls each makes.

    python bench/registry.py [--rounds 30] [--strict]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BASELINE = "f159d22"
TARGET = 1.5


def load_baseline(tmp: Path):
    source = subprocess.run(
        ["git", "show", f"{BASELINE}:airflow_mlops/core/registry.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / f"registry_{BASELINE}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"registry_{BASELINE}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class Counting:
    def __init__(self, client):
        self.client, self.calls = client, 0

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls += 1
            return attr(*args, **kwargs)

        return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the ratio misses the target")
    args = parser.parse_args()

    from mlflow import MlflowClient

    from airflow_mlops.core import registry as new
    from tests.faults.server import CliServer

    with tempfile.TemporaryDirectory(prefix="mlops-bench-registry-") as tmp:
        root = Path(tmp)
        old = load_baseline(root)
        server = CliServer(root)  # `mlflow server` on the SQLite store in root
        server.start()
        uri = server.uri
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
            sides = {"before (f159d22)": old, "now": new}
            models, times, calls = {}, {k: [] for k in sides}, {}
            for label in sides:
                name = f"bench-{label.split()[0]}"
                client.create_registered_model(name)
                for i in range(args.rounds + 1):
                    client.create_model_version(
                        name,
                        source=f"{run.info.artifact_uri}/m{i}",
                        run_id=run.info.run_id,
                        await_creation_for=0,
                    )
                models[label] = name
            origin = {"dag_id": "bench", "run_id": "bench-run", "task_id": "promote"}
            for label, module in sides.items():  # the first holder, not timed
                module.promote(client, models[label], "1", expected_current="none", origin=origin)
            order = list(sides)
            for i in range(1, args.rounds + 1):
                for label in order if i % 2 else reversed(order):
                    counting = Counting(client)
                    started = time.perf_counter()
                    sides[label].promote(
                        counting,
                        models[label],
                        str(i + 1),
                        expected_current=str(i),
                        reason="bench",
                        origin={**origin, "task_id": f"promote_{i}"},
                    )
                    times[label].append(time.perf_counter() - started)
                    calls[label] = counting.calls
        finally:
            server.close()

    medians = {k: statistics.median(v) for k, v in times.items()}
    for label, values in times.items():
        print(
            f"{label:>18}: median {medians[label] * 1000:7.1f} ms, p90 "
            f"{sorted(values)[int(len(values) * 0.9) - 1] * 1000:7.1f} ms, {calls[label]} registry calls "
            f"per promotion ({len(values)} promotions)"
        )
    before, now = medians["before (f159d22)"], medians["now"]
    ratio = now / before
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"promotion latency now / before: {ratio:.2f}x (target <= {TARGET}x; load average {load:.1f})")
    return 1 if args.strict and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
