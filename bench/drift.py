"""Drift decision speed and memory on 1M rows x (20 numeric + 5 categorical), beside Evidently.

    .venv/bin/python bench/drift.py                 # the full comparison (Evidently takes minutes)
    .venv/bin/python bench/drift.py --skip-evidently  # only the sensor's decision
    .venv/bin/python bench/drift.py --rows 100000     # a smaller shape

Prints, in one run: the sensor's decision time (``airflow_mlops.core.drift.compare`` on the two
in-memory dataframes, and end to end from parquet files) beside ``Report([DataDriftPreset()]).run``
on the same dataframes, the per-column agreement (method, score within 1e-6 relative, verdict),
and the decision's peak memory (tracemalloc: the frames plus everything the decision allocates)
against the size of the two dataframes. Targets: >= 10x faster, identical verdicts, peak <= 2x.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_NUMERIC = 20
N_CATEGORICAL = 5
# Evidently reports its own stat-test names for display; map them back to registry names.
EVIDENTLY_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}


def make_frames(rows: int, seed: int = 42):
    """Reference and a current window in which some columns moved (clearly) and the rest did not."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    def frame(shifted: bool):
        data = {}
        for i in range(N_NUMERIC):
            # every third numeric column drifts: location shift of 0.4 std (wasserstein ~0.4 > 0.1)
            shift = 0.4 if shifted and i % 3 == 0 else 0.0
            scale = [1.0, 10.0, 0.01, 250.0][i % 4]
            data[f"num_{i:02d}"] = rng.normal(shift * scale, scale, rows)
        for j in range(N_CATEGORICAL):
            k = [3, 5, 12, 40, 8][j]
            labels = np.array([f"cat{j}_{v}" for v in range(k)], dtype=object)
            p = np.linspace(1.0, 2.0, k)
            if shifted and j in (0, 2):
                p = p[::-1] ** 3  # a strong change of proportions
            data[f"cat_{j}"] = labels[rng.choice(k, rows, p=p / p.sum())]
        return pd.DataFrame(data)

    return frame(False), frame(True)


def frames_nbytes(*frames) -> int:
    """What the frames occupy: their arrays, plus each distinct string object once."""
    import sys as _sys

    total = 0
    seen: set[int] = set()
    for df in frames:
        total += int(df.memory_usage(index=True, deep=False).sum())
        for name in df.columns:
            if df[name].dtype == object:
                for value in df[name].drop_duplicates():
                    if id(value) not in seen:
                        seen.add(id(value))
                        total += _sys.getsizeof(value)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()

    from airflow_mlops.core.drift import compare
    from airflow_mlops.io import load_table

    print(
        f"shape: reference and current {args.rows:,} rows x ({N_NUMERIC} numeric + {N_CATEGORICAL} categorical)"
    )
    reference, current = make_frames(args.rows)
    size = frames_nbytes(reference, current)
    deep = int(reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum())
    print(
        f"dataframes: {size / 2**20:,.0f} MiB (arrays + distinct strings); pandas deep size {deep / 2**20:,.0f} MiB"
    )

    # decision time, in memory (best of 2: the first run also warms imports and caches)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        result = compare(reference, current)
        times.append(time.perf_counter() - start)
    decision = min(times)
    print(
        f"sensor decision (in memory): {decision:.2f} s  -> drift_detected={result.drift_detected} "
        f"share={result.share:.2f} ({len(result.drifted_columns)}/{len(result.tested)} columns)"
    )

    # peak memory of the decision: the frames plus all it allocates
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    compare(reference, current)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    print(
        f"decision peak extra allocation: {peak / 2**20:,.0f} MiB; peak with the frames: "
        f"{(size + peak) / 2**20:,.0f} MiB = {(size + peak) / size:.2f}x the dataframes (target <= 2x)"
    )

    # end to end, as the sensor does it: read both parquet files, then decide
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = os.path.join(tmp, "reference.parquet"), os.path.join(tmp, "current.parquet")
        reference.to_parquet(ref_path, index=False)
        current.to_parquet(cur_path, index=False)
        start = time.perf_counter()
        compare(load_table(ref_path), load_table(cur_path))
        end_to_end = time.perf_counter() - start
    print(f"sensor decision from parquet files (read + decide): {end_to_end:.2f} s")

    if args.skip_evidently:
        return 0

    start = time.perf_counter()
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_time = time.perf_counter() - start
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    evidently_time = time.perf_counter() - start
    print(f"Evidently Report([DataDriftPreset()]).run: {evidently_time:.1f} s (+ {import_time:.1f} s import)")

    snap = snapshot.dict()
    theirs: dict[str, dict] = {}
    for metric in snap["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            theirs[config["column"]] = {
                "method": EVIDENTLY_NAMES.get(config["method"], config["method"]),
                "score": float(metric["value"]),
                "threshold": config["threshold"],
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            their_share = metric["value"]["share"]
    for test in snap["tests"]:
        if test["id"] == "drift":
            theirs[test["metric_config"]["params"]["column"]]["drifted"] = test["status"] == "FAIL"

    agree = 0
    rows = []
    for name, ours in result.columns.items():
        other = theirs.get(name)
        if other is None:
            rows.append((name, ours.method, ours.score, ours.drifted, "-", None, None, "MISSING"))
            continue
        rel = abs(ours.score - other["score"]) / max(abs(other["score"]), 1e-300)
        same = ours.method == other["method"] and rel <= 1e-6 and ours.drifted == other["drifted"]
        agree += same
        rows.append(
            (
                name,
                ours.method,
                ours.score,
                ours.drifted,
                other["method"],
                other["score"],
                other["drifted"],
                f"{rel:.1e}",
            )
        )
    print(
        f"\n{'column':8s} {'sensor':>14s} {'score':>11s} {'drift':>6s} | {'evidently':>14s} {'score':>11s} {'drift':>6s} {'rel.diff':>8s}"
    )
    for name, m1, s1, d1, m2, s2, d2, rel in rows:
        print(
            f"{name:8s} {m1:>14s} {s1:11.6g} {d1!s:>6s} | {m2:>14s} {s2 if s2 is not None else float('nan'):11.6g} {d2!s:>6s} {rel:>8s}"
        )

    print()
    print(f"per-column agreement: {agree}/{len(result.columns)} columns (method, score within 1e-6, verdict)")
    print(
        f"dataset verdict: sensor share {result.share:.3f} drift={result.drift_detected}; Evidently share {their_share:.3f} drift={their_share >= 0.5}"
    )
    print(f"speed-up, decision in memory vs Evidently run: {evidently_time / decision:.1f}x (target >= 10x)")
    print(f"speed-up, decision from parquet vs Evidently run: {evidently_time / end_to_end:.1f}x")
    print(f"peak memory of the decision: {(size + peak) / size:.2f}x the dataframes (target <= 2x)")
    ok = agree == len(result.columns) and evidently_time / decision >= 10 and (size + peak) / size <= 2
    print("RESULT:", "all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
