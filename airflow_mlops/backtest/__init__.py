"""Backtest a retraining policy on your own labelled history.

``python -m airflow_mlops.backtest HISTORY`` (or :func:`backtest`) replays the policy the reference
DAGs are configured with (:meth:`airflow_mlops.policy.RetrainingPolicy.from_env`: the same drift
and performance settings, evaluation rule and training entrypoint) next to ``never``, ``every``
window and ``calendar``, and reports, per window and in total, the serving model's metric on the
next window, the retrainings, the training time and the drift/decay signals: a terminal table,
``backtest.json`` and ``backtest.html`` (with a plot). See ``docs/policy.md``.

Importing this package is light; pandas, scikit-learn and MLflow are imported when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlops.policy import RetrainingPolicy

__all__ = ["backtest", "default_entrypoint", "initial_windows_for", "BacktestInputError"]

DEFAULT_ENTRYPOINT = os.path.join("include", "training", "train.py")


def __getattr__(name: str) -> Any:
    if name == "BacktestInputError":
        from airflow_mlops.backtest.history import BacktestInputError

        return BacktestInputError
    raise AttributeError(f"module 'airflow_mlops.backtest' has no attribute {name!r}")


def initial_windows_for(policy: RetrainingPolicy, windows: int) -> int:
    """Windows the first model trains on: the policy's training window (a growing window, ``all`` or
    ``since_drift``: the first window)."""
    if not isinstance(policy.training_windows, int):
        return 1
    return max(1, min(int(policy.training_windows), windows - 1))


def default_entrypoint() -> str:
    """The entrypoint the training DAG runs: ``$MLOPS_TRAINING_ENTRYPOINT``, else ``include/training/train.py``."""
    return os.environ.get("MLOPS_TRAINING_ENTRYPOINT") or os.path.abspath(DEFAULT_ENTRYPOINT)


def backtest(
    history: Any,
    *,
    policy: RetrainingPolicy | None = None,
    entrypoint: str | None = None,
    timestamp: str | None = None,
    window: str | None = None,
    drop: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 5,
    policies: Sequence[str] | None = None,
    initial_windows: int | None = None,
    out_dir: str | None = None,
    jobs: int = 1,
    isolation: str = "inprocess",
    progress: Callable[[str], None] | None = None,
    ceiling: bool = False,
) -> dict[str, Any]:
    """Replay retraining policies on a labelled history and return the summary (``backtest.json``'s content).

    :param history: a folder with one parquet/CSV file (or sub-folder) per window, in name order; or
        one table (file, folder of parts, or DataFrame) with a ``timestamp`` column cut into
        ``window``-long windows; or a list of ``(label, DataFrame)``.
    :param policy: the policy to replay (default: ``RetrainingPolicy.from_env()``, what the
        reference DAGs read). Its ``target`` names the label column.
    :param entrypoint: the training script (default: :func:`default_entrypoint`).
    :param timestamp: the timestamp column of a single table.
    :param window: the window length of a single table, a pandas frequency (``D``, ``W``, ``MS``, ``YS``).
    :param drop: columns that are neither features nor target (ids ...).
    :param seeds: how many seeds (1, 2, ...) or which; each sets the held-out split and the model's seed.
    :param policies: which of ``never``, ``every``, ``calendar``, ``triggered`` (default: all four).
    :param initial_windows: windows the first model trains on (default: the policy's training window).
    :param out_dir: where to write ``backtest.json`` and ``backtest.html`` (default: write nothing).
    :param jobs: seeds replayed in parallel processes.
    :param isolation: ``"inprocess"`` (default) or ``"process"``: how the entrypoint is run.
    :param progress: called with one line per replayed window (default: silent).
    :param ceiling: also report the ceiling with hindsight (``summary["ceiling"]``): the best mean
        any policy could reach at this training window with a quarter of every window's
        retrainings. Scores every candidate on every later window; needs a fixed training window.
    """
    import json
    import time

    from airflow_mlops.backtest import report
    from airflow_mlops.backtest.history import BacktestInputError, load_history
    from airflow_mlops.core.retraining import POLICIES
    from airflow_mlops.policy import RetrainingPolicy

    began = time.perf_counter()
    policy = policy or RetrainingPolicy.from_env()
    entrypoint = os.path.abspath(entrypoint or default_entrypoint())
    if not os.path.isfile(entrypoint):
        raise BacktestInputError(
            f"training entrypoint not found: {entrypoint} (pass --entrypoint or set MLOPS_TRAINING_ENTRYPOINT)"
        )
    seed_list = list(range(1, seeds + 1)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise BacktestInputError("seeds: at least one seed is needed")
    loaded = load_history(
        history, target=policy.target, timestamp=timestamp, window=window, drop=list(drop or [])
    )
    initial = (
        initial_windows if initial_windows is not None else initial_windows_for(policy, len(loaded.windows))
    )
    names = list(policies or POLICIES)
    kwargs = {
        "entrypoint": entrypoint,
        "policies": names,
        "initial_windows": initial,
        "isolation": isolation,
        "ceiling": ceiling,
    }
    if jobs > 1 and len(seed_list) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(seed_list))) as pool:
            futures = [pool.submit(_replay, loaded, policy, seed, kwargs) for seed in seed_list]
            runs = []
            for future in futures:
                runs.append(future.result())
                if progress is not None:
                    progress(f"seed {runs[-1].seed} done in {runs[-1].seconds:.0f} s")
    else:
        runs = [_replay(loaded, policy, seed, {**kwargs, "progress": progress}) for seed in seed_list]
    summary = report.summarize(
        runs,
        policy=policy.as_dict(),
        source=loaded.source,
        entrypoint=entrypoint,
        metric=policy.metric,
        seconds=time.perf_counter() - began,
    )
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        json_path, html_path = os.path.join(out_dir, "backtest.json"), os.path.join(out_dir, "backtest.html")
        summary["files"] = {"json": json_path, "html": html_path}
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, default=str)
        with open(html_path, "w", encoding="utf-8") as fh:
            fh.write(report.html_page(summary))
    return summary


def _replay(history: Any, policy: RetrainingPolicy, seed: int, kwargs: dict[str, Any]) -> Any:
    from airflow_mlops.backtest.replay import replay_seed

    return replay_seed(history, policy, seed=seed, **kwargs)
