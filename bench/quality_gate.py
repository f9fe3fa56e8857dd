"""Quality gate overhead: DataQualityGateOperator vs a bare Great Expectations validation.

One run on 1M rows x 20 columns (14 numeric, 5 text, 1 label) with a suite suggested from the
data itself (so both sides validate the same ~90 expectations, and the data passes). Both sides
start from the parquet file on disk:

- bare GX: ``pandas.read_parquet`` + ephemeral context + ``ValidationDefinition.run`` (SUMMARY);
- the gate: ``DataQualityGateOperator.execute`` (reads the file through ``load_table``, checks
  the suite and columns, validates, summarises, writes the HTML + JSON report, pushes XCom).

Each side runs ``--repeat`` times, alternating which goes first; the best time of each is
compared (the minimum is the least disturbed by other processes). Wall time is the target
(overhead <= 10%); CPU time of this process is printed beside it because on a shared machine
the wall clock mostly measures the neighbours (the load average is printed too).

    python bench/quality_gate.py [--rows 1000000] [--repeat 3] [--strict]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_OVERHEAD = 0.10


def make_data(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    cols = {}
    for i in range(14):
        cols[f"num_{i:02d}"] = rng.normal(50 + i, 10, rows) if i % 2 else rng.integers(0, 1000, rows)
    for i in range(5):
        cols[f"cat_{i}"] = rng.choice(["alpha", "beta", "gamma", "delta", "epsilon"][: 3 + i % 3], rows)
    cols["label"] = rng.integers(0, 2, rows)
    pd.DataFrame(cols).to_parquet(path)


def bare_gx(data: str, expectations: list[dict]) -> tuple[float, float]:
    """What a team would write by hand with GX 1.x: read, build the suite, validate."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    start, cpu = time.perf_counter(), time.process_time()
    df = pd.read_parquet(data)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
    )
    suite = gx.ExpectationSuite(name="bench")
    for e in expectations:
        suite.add_expectation(
            ExpectationConfiguration(
                type=e["type"], kwargs=e["kwargs"], severity=e["severity"]
            ).to_domain_obj()
        )
    suite = context.suites.add(suite)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name="v")
    )
    result = validation.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert result.success, "bench data should pass its own suggested suite"
    return elapsed


class _TI:
    dag_id = "bench"
    run_id = "manual__bench"
    task_id = "gate"
    map_index = -1

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def gate(data: str, suite_path: str, report_dir: str) -> tuple[float, float]:
    from airflow_mlops.operators.quality import DataQualityGateOperator

    op = DataQualityGateOperator(task_id="gate", data=data, suite=suite_path, report_dir=report_dir)
    start, cpu = time.perf_counter(), time.process_time()
    summary = op.execute({"ti": _TI(), "dag": None})
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    assert summary["success"] and summary["failed"] == [], summary["failed"][:3]
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when the wall-time overhead misses the target"
    )
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    for name in ("airflow", "airflow.task", "great_expectations"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", tmp)
        data = Path(tmp) / "data.parquet"
        t0 = time.perf_counter()
        make_data(data, args.rows)
        print(f"data: {args.rows} rows x 20 columns, {data.stat().st_size / 1e6:.1f} MB parquet "
              f"({time.perf_counter() - t0:.1f} s to generate)")  # fmt: skip

        from airflow_mlops.core.quality import generate_suite

        t0 = time.perf_counter()
        import great_expectations  # noqa: F401  - both sides pay it once, outside the timings

        print(
            f"import great_expectations: {time.perf_counter() - t0:.1f} s (once per worker process, not timed)"
        )
        suite_path = str(Path(tmp) / "suite.json")
        suite = generate_suite(str(data), suite_path)
        print(f"suite: {len(suite['expectations'])} expectations suggested from the data")

        bare_times, gate_times = [], []
        for i in range(args.repeat):
            # alternate which side goes first, so warm caches favour neither
            for side in ("bare", "gate") if i % 2 == 0 else ("gate", "bare"):
                if side == "bare":
                    bare_times.append(bare_gx(str(data), suite["expectations"]))
                else:
                    gate_times.append(gate(str(data), suite_path, str(Path(tmp) / "reports" / str(i))))
            print(f"  round {i + 1}: bare GX {bare_times[-1][0]:.2f} s (cpu {bare_times[-1][1]:.2f} s), "
                  f"gate {gate_times[-1][0]:.2f} s (cpu {gate_times[-1][1]:.2f} s)")  # fmt: skip
        print()
        print(
            f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
        )
        print(f"{'':26}{'wall best (s)':>14}{'cpu best (s)':>14}   all runs wall/cpu (s)")
        rows = {"bare GX validation": bare_times, "DataQualityGateOperator": gate_times}
        for label, times in rows.items():
            runs = "  ".join(f"{w:.2f}/{c:.2f}" for w, c in times)
            print(f"{label:26}{min(w for w, _ in times):>14.2f}{min(c for _, c in times):>14.2f}   {runs}")
        wall = min(w for w, _ in gate_times) / min(w for w, _ in bare_times)
        cpu = min(c for _, c in gate_times) / min(c for _, c in bare_times)
        for name, ratio in (("wall", wall), ("cpu", cpu)):
            verdict = "met" if ratio - 1 <= TARGET_OVERHEAD else "MISSED"
            print(f"ratio gate / bare GX ({name}): {ratio:.3f}  (overhead {ratio - 1:+.1%}, "
                  f"target <= {TARGET_OVERHEAD:.0%}: {verdict})")  # fmt: skip
        overhead = wall - 1
        return 1 if args.strict and overhead > TARGET_OVERHEAD else 0


if __name__ == "__main__":
    raise SystemExit(main())
