"""Retraining in a backtest: the real training entrypoint, through its contract.

The entrypoint (``include/training/train.py`` or yours, ``docs/training.md``) is run as the
``local`` backend runs it: ``--train <file> --validation <file> --params <json> --output-dir <dir>``,
then the MLflow model it wrote to ``<dir>/model`` is loaded as the operators load a registered
version (the scikit-learn flavour when it has one, else pyfunc) and ``<dir>/metrics.json`` is read.
By default the script runs in this process (``runpy``, as ``__main__``, with its own ``sys.argv``)
to save an interpreter start per retraining; ``isolation="process"`` runs it in a subprocess.

A candidate trained after window ``t`` depends only on the data up to ``t``, the policy's
training settings and the seed, not on which replayed policy asked for it, so each is trained
once and shared (:class:`CandidateCache`); each policy is charged the training time of the
retrainings it asked for.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.backtest.history import BacktestInputError, History
from airflow_mlops.policy import RetrainingPolicy

if TYPE_CHECKING:
    import pandas as pd


class TrainingFailed(RuntimeError):
    """The entrypoint exited non-zero or wrote no model; the message holds the end of its output."""


@dataclass
class Candidate:
    version: int  # registry-style number: the order in which the cache trained it, from 1
    window: int  # index of the last window it was trained on (its held-out rows come from it)
    start: int  # index of the first window it was trained on
    model: Any
    reference: pd.DataFrame  # its training data: the drift check's reference
    eval_X: pd.DataFrame  # held-out part of the most recent window
    eval_y: pd.Series
    training_metrics: dict[str, float]  # metrics.json, as the entrypoint reported them
    seconds: float
    train_rows: int

    @property
    def key(self) -> tuple[int, int]:
        """What it was trained on: (first window, last window); the same key, the same model."""
        return (self.start, self.window)


def load_model_dir(path: str) -> Any:
    """Load an MLflow model folder as the operators load a registered version."""
    import warnings

    from mlflow.models import Model

    if "sklearn" in Model.load(path).flavors:
        import mlflow.sklearn

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return mlflow.sklearn.load_model(path)
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path)


def run_entrypoint(entrypoint: str, argv: list[str], *, isolation: str = "inprocess", log_path: str) -> None:
    """Run the training script with ``argv``; its output goes to ``log_path``."""
    if isolation == "process":
        with open(log_path, "w") as log:
            proc = subprocess.run(
                [sys.executable, entrypoint, *argv], stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if proc.returncode != 0:
            raise TrainingFailed(f"{entrypoint} exited with {proc.returncode}: {_tail(log_path)}")
        return
    if isolation != "inprocess":
        raise BacktestInputError(f"isolation must be 'inprocess' or 'process', got {isolation!r}")
    buffer = io.StringIO()
    saved_argv = sys.argv
    sys.argv = [entrypoint, *argv]
    code: Any = 0
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                runpy.run_path(entrypoint, run_name="__main__")
            except SystemExit as stop:
                code = stop.code
            except Exception as err:  # the script's own error: its message is what the user needs
                code = f"{type(err).__name__}: {err}"
    finally:
        sys.argv = saved_argv
        with open(log_path, "w") as log:
            log.write(buffer.getvalue())
    if code not in (0, None):
        raise TrainingFailed(f"{entrypoint} failed ({code}): {_tail(log_path)}")


def _tail(path: str, lines: int = 12) -> str:
    with open(path, errors="replace") as fh:
        return " | ".join(fh.read().strip().splitlines()[-lines:])


class CandidateCache:
    """Train, once, each candidate (a span of windows); forget those no policy serves any more."""

    def __init__(
        self,
        history: History,
        policy: RetrainingPolicy,
        *,
        entrypoint: str,
        seed: int,
        workdir: str,
        isolation: str = "inprocess",
        reuse: bool = False,
    ) -> None:
        """:param reuse: keep the trained candidates in ``workdir`` and reuse those trained with the
        same data, parameters and entrypoint (benchmarks comparing settings; the time charged is the
        time recorded when it was trained)."""
        if not os.path.isfile(entrypoint):
            raise BacktestInputError(f"training entrypoint not found: {entrypoint}")
        self.history = history
        self.policy = policy
        self.entrypoint = os.path.abspath(entrypoint)
        self.seed = seed
        self.workdir = workdir
        self.isolation = isolation
        self.reuse = reuse
        self._cache: dict[tuple[int, int], Candidate] = {}
        self._memo: dict[tuple, Any] = {}
        self._versions: dict[tuple[int, int], int] = {}

    def memo(self, key: tuple, compute: Any) -> Any:
        """A score or drift result of a candidate on a window, computed once (policies share models)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def get(self, t: int, start: int) -> Candidate:
        """The candidate trained on windows ``start`` to ``t``, the held-out part of ``t`` excepted."""
        if not 0 <= start <= t < len(self.history.windows):
            raise ValueError(f"no training span from window {start} to {t}")
        key = (start, t)
        if key not in self._cache:
            self._cache[key] = self._train(t, start)
        return self._cache[key]

    def trains_like(self, policy: RetrainingPolicy) -> bool:
        """Whether ``policy`` trains and holds out exactly as the policy this cache was built for
        (the training window may differ: a candidate is keyed by the span it trained on)."""
        mine = self.policy
        return (
            policy.target == mine.target
            and policy.eval_fraction == mine.eval_fraction
            and policy.training_params() == mine.training_params()
        )

    def keep_only(self, keys: set[tuple[int, int]]) -> None:
        for key in [k for k in self._cache if k not in keys]:
            del self._cache[key]
        for key in [k for k in self._memo if k[1] not in keys]:
            del self._memo[key]

    def split(self, t: int, first: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Training rows (windows ``first`` to ``t``) and held-out evaluation rows (of window ``t``)."""
        import numpy as np
        import pandas as pd

        policy = self.policy
        latest = self.history.windows[t].frame
        rng = np.random.default_rng([self.seed, t])
        order = rng.permutation(len(latest))
        n_eval = max(1, int(round(len(latest) * policy.eval_fraction)))
        if n_eval >= len(latest):
            raise BacktestInputError(
                f"window {self.history.windows[t].label} has {len(latest)} labelled rows: too few to hold "
                f"out eval_fraction={policy.eval_fraction} for the evaluation and train on the rest"
            )
        held_out = latest.iloc[np.sort(order[:n_eval])]
        kept = latest.iloc[np.sort(order[n_eval:])]
        older = [w.frame for w in self.history.windows[first:t]]
        train = pd.concat([*older, kept], ignore_index=True)
        return train, held_out.reset_index(drop=True)

    @staticmethod
    def _reused(done: str, key: dict[str, Any]) -> float | None:
        """The recorded training time of an identical earlier run in this workdir, or None."""
        try:
            with open(done) as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            return None
        seconds = record.pop("seconds", None)
        return float(seconds) if record == json.loads(json.dumps(key)) and seconds is not None else None

    def _train(self, t: int, start: int) -> Candidate:
        target = self.policy.target
        train, held_out = self.split(t, start)
        folder = os.path.join(self.workdir, f"seed{self.seed}-w{start:04d}-{t:04d}")
        os.makedirs(folder, exist_ok=True)
        train_path, eval_path = os.path.join(folder, "train.parquet"), os.path.join(folder, "eval.parquet")
        train.to_parquet(train_path, index=False)
        held_out.to_parquet(eval_path, index=False)
        params = {**self.policy.training_params(), "seed": self.seed}
        out = os.path.join(folder, "out")
        argv = [
            "--train",
            train_path,
            "--validation",
            eval_path,
            "--params",
            json.dumps(params),
            "--output-dir",
            out,
        ]
        done = os.path.join(folder, "done.json")
        key = {"argv": argv, "entrypoint": self.entrypoint, "rows": len(train)}
        seconds = self._reused(done, key) if self.reuse else None
        if seconds is None:
            began = time.perf_counter()
            run_entrypoint(
                self.entrypoint, argv, isolation=self.isolation, log_path=os.path.join(folder, "train.log")
            )
            seconds = time.perf_counter() - began
            with open(done, "w") as fh:
                json.dump({**key, "seconds": seconds}, fh)
        model_dir = os.path.join(out, "model")
        if not os.path.isfile(os.path.join(model_dir, "MLmodel")):
            raise TrainingFailed(f"{self.entrypoint} wrote no MLflow model to {model_dir}")
        metrics: dict[str, float] = {}
        metrics_path = os.path.join(out, "metrics.json")
        if os.path.isfile(metrics_path):
            with open(metrics_path) as fh:
                metrics = json.load(fh)
        version = self._versions.setdefault((start, t), len(self._versions) + 1)
        return Candidate(
            version=version,
            window=t,
            start=start,
            model=load_model_dir(model_dir),
            reference=train,
            eval_X=held_out.drop(columns=[target]),
            eval_y=held_out[target],
            training_metrics=metrics,
            seconds=seconds,
            train_rows=len(train),
        )
