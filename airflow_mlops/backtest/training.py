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
from airflow_mlops.policy import TRAINING_WINDOW_ALL, RetrainingPolicy

if TYPE_CHECKING:
    import pandas as pd


class TrainingFailed(RuntimeError):
    """The entrypoint exited non-zero or wrote no model; the message holds the end of its output."""


@dataclass
class Candidate:
    version: int  # registry-style number: the index of the window it was trained after, plus one
    window: int  # index of the last window it was trained on
    model: Any
    reference: pd.DataFrame  # its training data: the drift check's reference
    eval_X: pd.DataFrame  # held-out part of the most recent window
    eval_y: pd.Series
    training_metrics: dict[str, float]  # metrics.json, as the entrypoint reported them
    seconds: float
    train_rows: int


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
    """Train, once, the candidate after each window; forget those no policy serves any more."""

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
        self._cache: dict[int, Candidate] = {}
        self._memo: dict[tuple, Any] = {}

    def memo(self, key: tuple, compute: Any) -> Any:
        """A score or drift result of a candidate on a window, computed once (policies share models)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def get(self, t: int) -> Candidate:
        if t not in self._cache:
            self._cache[t] = self._train(t)
        return self._cache[t]

    def trains_like(self, policy: RetrainingPolicy) -> bool:
        """Whether ``policy`` trains and holds out exactly as the policy this cache was built for."""
        mine = self.policy
        return (
            policy.target == mine.target
            and policy.training_windows == mine.training_windows
            and policy.eval_fraction == mine.eval_fraction
            and policy.training_params() == mine.training_params()
        )

    def keep_only(self, windows: set[int]) -> None:
        for t in [t for t in self._cache if t not in windows]:
            del self._cache[t]
        versions = {t + 1 for t in windows}
        for key in [k for k in self._memo if k[1] not in versions]:
            del self._memo[key]

    def split(self, t: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Training rows and held-out evaluation rows of a retraining after window ``t``."""
        import numpy as np
        import pandas as pd

        policy = self.policy
        first = (
            0
            if policy.training_windows == TRAINING_WINDOW_ALL
            else max(0, t - int(policy.training_windows) + 1)
        )
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

    def _train(self, t: int) -> Candidate:
        target = self.policy.target
        train, held_out = self.split(t)
        folder = os.path.join(self.workdir, f"seed{self.seed}-w{t:04d}")
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
        return Candidate(
            version=t + 1,
            window=t,
            model=load_model_dir(model_dir),
            reference=train,
            eval_X=held_out.drop(columns=[target]),
            eval_y=held_out[target],
            training_metrics=metrics,
            seconds=seconds,
            train_rows=len(train),
        )
