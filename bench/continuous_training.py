"""Continuous-training policies on the demo stream: accuracy per window and retraining count.

Three policies replay the same daily churn stream (``include/demo/data.py``: a covariate shift and
a concept drift from a known date). At each window the serving champion is scored on that day's
labelled batch (that is the accuracy the business got that day); then the policy decides whether
to retrain before the next day:

* ``never``      -- the initial champion serves for ever;
* ``every``      -- retrain on every window;
* ``triggered``  -- retrain only when the drift check (``airflow_mlops.core.drift.compare``, the
  code behind ``DataDriftSensor``: reference = the champion's training data) or the performance
  check (the champion's accuracy fell more than ``MAX_DROP`` below the value recorded at its
  evaluation, as ``ModelPerformanceSensor`` does) fires.

A retraining is the same for both retraining policies: fit on 70% of the window's labelled batch,
score the candidate and the champion on the other 30%, and let the evaluation rule
(``airflow_mlops.core.evaluation.decide``, the code behind ``EvaluateModelOperator``) decide
whether the candidate replaces the champion. Only the trigger differs, which is what is compared.

Fitting uses scikit-learn directly (the same model family as ``include/training/train.py``'s
default, a random forest on one-hot categoricals), not Airflow or MLflow: this measures the policy,
not the plumbing. Target: ``triggered`` ends within 1 accuracy point of ``every`` with at most a
third of its retrainings. Run: ``python bench/continuous_training.py [--days N --drift-day K]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METRIC = "accuracy"
MAX_DROP = 0.10  # relative drop of the champion's accuracy that counts as degraded
DRIFT_SHARE = 0.5  # DataDriftSensor's default
TRAIN_FRACTION = 0.7
SEED = 42


def load_demo_data() -> Any:
    spec = importlib.util.spec_from_file_location("demo_data", REPO / "include" / "demo" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_model(numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = ColumnTransformer(
        [
            ("num", "passthrough", numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    forest = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=SEED, n_jobs=1)
    return Pipeline([("features", features), ("model", forest)])


@dataclass
class Champion:
    model: Any
    version: int
    reference: Any  # the data it was trained on: the drift check's reference
    baseline: float  # accuracy recorded at its evaluation: the performance check's baseline


@dataclass
class Policy:
    name: str
    champion: Champion
    accuracies: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    retrainings: int = 0
    promotions: int = 0
    triggers: list[str] = field(default_factory=list)
    seconds: float = 0.0


def accuracy(model: Any, df: Any, features: list[str], target: str) -> float:
    return float((model.predict(df[features]) == df[target]).mean())


def retrain(policy: Policy, window: Any, features: list[str], target: str, make: Any) -> None:
    """Fit on part of the window, evaluate against the champion on the rest, promote if it wins."""
    from airflow_mlops.core.evaluation import PROMOTE, decide

    shuffled = window.sample(frac=1.0, random_state=SEED)
    cut = int(len(shuffled) * TRAIN_FRACTION)
    train, holdout = shuffled.iloc[:cut], shuffled.iloc[cut:]
    candidate = make().fit(train[features], train[target])
    policy.retrainings += 1
    version = 1 + policy.retrainings  # registry-style: every retraining registers a new version
    cand_acc = accuracy(candidate, holdout, features, target)
    champ_acc = accuracy(policy.champion.model, holdout, features, target)
    record = decide(
        metric=METRIC,
        candidate_version=str(version),
        candidate_metrics={METRIC: cand_acc},
        champion_version=str(policy.champion.version),
        champion_metrics={METRIC: champ_acc},
    )
    if record["decision"] == PROMOTE:
        policy.promotions += 1
        policy.champion = Champion(candidate, version, train[features], cand_acc)


def should_retrain(policy: Policy, window: Any, served_acc: float, features: list[str]) -> str | None:
    """The triggered policy's decision: a reason to retrain, or None."""
    from airflow_mlops.core.drift import compare

    drift = compare(policy.champion.reference, window[features], columns=features, drift_share=DRIFT_SHARE)
    degraded = served_acc < policy.champion.baseline * (1.0 - MAX_DROP)
    reasons = []
    if drift.drift_detected:
        reasons.append(f"drift {drift.share:.0%}")
    if degraded:
        reasons.append(f"accuracy {served_acc:.3f} < {policy.champion.baseline:.3f} - {MAX_DROP:.0%}")
    return ", ".join(reasons) or None


def run(days: int, drift_day: int, rows: int) -> tuple[list[dict], dict[str, Policy]]:
    import pandas as pd

    data = load_demo_data()
    with tempfile.TemporaryDirectory(prefix="bench-ct-") as tmp:
        manifest = data.generate(tmp, days=days, drift_day=drift_day, rows_per_day=rows)
        train = pd.read_parquet(manifest["train"])
        evaluation = pd.read_parquet(manifest["eval"])
        windows = [(w["date"], w["drifted"], pd.read_parquet(w["path"])) for w in manifest["windows"]]

    features, target = data.FEATURES, data.TARGET

    def make() -> Any:
        return make_model(data.NUMERIC, data.CATEGORICAL)

    initial = make().fit(train[features], train[target])
    start = Champion(initial, 1, train[features], accuracy(initial, evaluation, features, target))
    policies = {name: Policy(name, start) for name in ("never", "every", "triggered")}

    for _date, _drifted, window in windows:
        for policy in policies.values():
            began = time.perf_counter()
            served = accuracy(policy.champion.model, window, features, target)
            policy.accuracies.append(served)
            policy.versions.append(policy.champion.version)
            if policy.name == "every":
                policy.triggers.append("schedule")
                retrain(policy, window, features, target, make)
            elif policy.name == "triggered":
                reason = should_retrain(policy, window, served, features)
                policy.triggers.append(reason or "")
                if reason:
                    retrain(policy, window, features, target, make)
            else:
                policy.triggers.append("")
            policy.seconds += time.perf_counter() - began
    rows_out = [{"date": d, "drifted": dr} for d, dr, _ in windows]
    return rows_out, policies


def report(rows: list[dict], policies: dict[str, Policy], drift_day: int) -> None:
    names = list(policies)
    head = (
        f"{'window':<12} {'drift':<6}" + "".join(f" {n + ' acc (v)':>18}" for n in names) + "  triggered by"
    )
    print(head)
    print("-" * len(head))
    for i, row in enumerate(rows):
        cells = "".join(
            f" {policies[n].accuracies[i]:>12.3f} (v{policies[n].versions[i]})".rjust(19) for n in names
        )
        print(
            f"{row['date']:<12} {'yes' if row['drifted'] else 'no':<6}{cells}  {policies['triggered'].triggers[i]}"
        )
    print("-" * len(head))

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    after = slice(drift_day, None)
    for label, part in (("mean after drift", after),):
        print(f"{label:<19}" + "".join(f" {mean(policies[n].accuracies[part]):>18.3f}" for n in names))
    every, trig = policies["every"], policies["triggered"]
    gap = (mean(every.accuracies) - mean(trig.accuracies)) * 100
    ratio = trig.retrainings / every.retrainings if every.retrainings else float("nan")
    verdict = "PASS" if gap <= 1.0 and ratio <= 1 / 3 else "MISS"
    print(
        f"{verdict}: triggered is {abs(gap):.2f} accuracy points {'behind' if gap > 0 else 'ahead of'} "
        "every-window (target: at most 1.00 behind) "
        f"with {trig.retrainings}/{every.retrainings} = {ratio:.2f} of its retrainings (target <= 0.33)"
    )
    print(
        "TOTAL "
        + " | ".join(
            f"{n}: mean acc {mean(p.accuracies):.3f}, retrainings {p.retrainings}, promotions {p.promotions}, "
            f"{p.seconds:.1f} s"
            for n, p in policies.items()
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=None, help="windows in the stream (default: the demo's)")
    parser.add_argument("--drift-day", type=int, default=None, help="index of the first drifted window")
    parser.add_argument("--rows", type=int, default=None, help="rows per window")
    args = parser.parse_args(argv)
    data = load_demo_data()
    days = args.days or data.DEFAULT_DAYS
    drift_day = args.drift_day if args.drift_day is not None else data.DEFAULT_DRIFT_DAY
    rows_per_day = args.rows or data.DEFAULT_ROWS
    print(
        f"demo stream: {days} daily windows of {rows_per_day} rows, drift from window {drift_day}; "
        f"drift share >= {DRIFT_SHARE}, max accuracy drop {MAX_DROP:.0%}"
    )
    rows, policies = run(days, drift_day, rows_per_day)
    report(rows, policies, drift_day)
    return 0


if __name__ == "__main__":
    sys.exit(main())
