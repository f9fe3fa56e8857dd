"""``python -m airflow_mlops.backtest``: replay the configured retraining policy on your own history."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from airflow_mlops.backtest import backtest, default_entrypoint
    from airflow_mlops.core.retraining import POLICIES
    from airflow_mlops.policy import PolicyError, RetrainingPolicy

    parser = argparse.ArgumentParser(
        prog="python -m airflow_mlops.backtest",
        description="Replay the retraining policy the reference DAGs are configured with (and never / "
        "every window / calendar) on a labelled history; report the serving model's metric per window, "
        "the retrainings, the training time and the drift/decay signals.",
    )
    parser.add_argument(
        "history", help="folder with one parquet/CSV file (or sub-folder) per window, or one table"
    )
    parser.add_argument("--timestamp", help="timestamp column of a single table (then --window is required)")
    parser.add_argument(
        "--window", help="window length of a single table: a pandas frequency (D, W, MS, QS, YS)"
    )
    parser.add_argument(
        "--target", help="label column (default: the policy's target, MLOPS_TARGET or 'label')"
    )
    parser.add_argument(
        "--drop", action="append", default=[], help="a column that is neither feature nor target"
    )
    parser.add_argument("--entrypoint", help=f"training script (default: {default_entrypoint()})")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds replayed in parallel (default 1)")
    parser.add_argument(
        "--policies", default=",".join(POLICIES), help=f"comma-separated subset of {','.join(POLICIES)}"
    )
    parser.add_argument("--initial-windows", type=int, help="windows the first model trains on")
    parser.add_argument(
        "--training-windows", help="override the policy: 'since_drift', 'all' or a number of recent windows"
    )
    parser.add_argument("--calendar-every", type=int, help="override the calendar policy's period (windows)")
    parser.add_argument("--out", default="backtest-report", help="folder for backtest.json and backtest.html")
    parser.add_argument(
        "--process", action="store_true", help="run the entrypoint in a subprocess per retraining"
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also report the best any policy could do with a quarter of every window's retrainings, "
        "knowing the future (scores every candidate on every later window)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    from airflow_mlops.backtest.history import BacktestInputError
    from airflow_mlops.backtest.report import table

    try:
        overrides: dict = {}
        if args.target:
            overrides["target"] = args.target
        if args.training_windows:
            tw = args.training_windows
            overrides["training_windows"] = tw if tw in ("all", "since_drift") else int(tw)
        if args.calendar_every:
            overrides["calendar_every"] = args.calendar_every
        policy = RetrainingPolicy.from_env(**overrides)
        if "target" in overrides:
            policy = policy.replace(
                hyperparameters={k: v for k, v in policy.hyperparameters.items() if k != "target"}
            )
        summary = backtest(
            args.history,
            policy=policy,
            entrypoint=args.entrypoint,
            timestamp=args.timestamp,
            window=args.window,
            drop=args.drop,
            seeds=args.seeds,
            policies=[p.strip() for p in args.policies.split(",") if p.strip()],
            initial_windows=args.initial_windows,
            out_dir=args.out,
            jobs=args.jobs,
            isolation="process" if args.process else "inprocess",
            progress=None if args.quiet else _progress,
            ceiling=args.ceiling,
        )
    except (BacktestInputError, PolicyError, ValueError) as err:
        print(f"backtest: error: {err}", file=sys.stderr)
        return 2
    print(table(summary))
    print(f"\nWrote {summary['files']['json']} and {summary['files']['html']} ({summary['seconds']:.0f} s)")
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
