"""The demo's data stream: daily batches of a customer-churn table, with a drift at a known date.

A telecom operator scores its customers every day for churn risk. Each day brings one batch of
customers with eleven features (numeric and categorical) and a binary ``label`` (1 = churned within
the month), known a little later. Everything is generated here, deterministically from a seed:
nothing is downloaded.

On ``drift_date`` a competitor launches a cheap unlimited-data fibre offer in the south and east,
and the operator reacts with a price rise and a retention discount for month-to-month customers:

* **covariate shift** -- monthly charges rise, fibre and heavy data use spread, support calls and
  late payments increase, satisfaction falls, more customers are on month-to-month contracts;
* **concept drift** -- the reasons people leave change: heavy data users, fibre customers and the
  south/east regions now churn, month-to-month customers (discounted) stay, and long tenure no
  longer protects anyone (long-standing customers on legacy plans are the competitor's target).

A model trained before the drift loses a large part of its accuracy afterwards; a model trained on
one post-drift batch gets it back. Files written::

    <out>/train.parquet            initial training data (the weeks before the first window)
    <out>/eval.parquet             initial held-out evaluation data (same period)
    <out>/windows/<date>.parquet   one labelled batch per day
    <out>/manifest.json            dates, drift date, schema, row counts

Usage: ``python include/demo/data.py --out /tmp/churn`` or ``generate(out)``. Needs numpy,
pandas and pyarrow only, and takes about a second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

import numpy as np
import pandas as pd

TARGET = "label"
NUMERIC = [
    "tenure_months",
    "monthly_charges",
    "data_usage_gb",
    "support_calls",
    "late_payments",
    "satisfaction",
    "age",
]
CATEGORICAL = ["contract", "internet_service", "payment_method", "region"]
FEATURES = NUMERIC + CATEGORICAL

CONTRACTS = ["month_to_month", "one_year", "two_year"]
INTERNET = ["dsl", "fiber", "none"]
PAYMENTS = ["electronic_check", "credit_card", "bank_transfer", "mailed_check"]
REGIONS = ["north", "south", "east", "west"]

DEFAULT_START = "2025-03-01"
DEFAULT_DAYS = 12
DEFAULT_DRIFT_DAY = 6  # 0-based index of the first drifted window: 2025-03-07 by default
DEFAULT_ROWS = 2000
DEFAULT_TRAIN_ROWS = 6000
DEFAULT_EVAL_ROWS = 2000
DEFAULT_SEED = 42

# Population before and after the drift date.
_BEFORE: dict[str, Any] = {
    "contract": [0.50, 0.30, 0.20],
    "internet": [0.45, 0.40, 0.15],
    "payment": [0.35, 0.25, 0.25, 0.15],
    "region": [0.25, 0.25, 0.25, 0.25],
    "price_rise": 0.0,
    "usage_scale": 1.0,
    "support_rate": 1.2,
    "late_rate": 0.35,
    "satisfaction_mean": 3.6,
}
_AFTER: dict[str, Any] = {
    "contract": [0.68, 0.20, 0.12],
    "internet": [0.30, 0.60, 0.10],
    "payment": [0.35, 0.25, 0.25, 0.15],
    "region": [0.25, 0.25, 0.25, 0.25],
    "price_rise": 14.0,
    "usage_scale": 1.6,
    "support_rate": 2.4,
    "late_rate": 0.6,
    "satisfaction_mean": 3.0,
}


def _features(rng: np.random.Generator, n: int, regime: dict[str, Any]) -> pd.DataFrame:
    contract = rng.choice(CONTRACTS, size=n, p=regime["contract"])
    internet = rng.choice(INTERNET, size=n, p=regime["internet"])
    payment = rng.choice(PAYMENTS, size=n, p=regime["payment"])
    region = rng.choice(REGIONS, size=n, p=regime["region"])
    # Longer contracts go with longer tenure.
    tenure_scale = np.select([contract == "two_year", contract == "one_year"], [40.0, 26.0], 14.0)
    tenure = np.clip(np.round(rng.gamma(1.6, tenure_scale / 1.6)), 1, 72).astype("int64")
    base_charge = np.select([internet == "fiber", internet == "dsl"], [78.0, 56.0], 24.0)
    charges = np.round(base_charge + regime["price_rise"] + rng.normal(0.0, 9.0, n), 2)
    usage_mean = np.select([internet == "fiber", internet == "dsl"], [180.0, 90.0], 4.0)
    usage = np.round(rng.lognormal(np.log(usage_mean * regime["usage_scale"]), 0.45), 1)
    support = rng.poisson(regime["support_rate"], n).astype("int64")
    late = rng.poisson(regime["late_rate"] * np.where(payment == "mailed_check", 1.8, 1.0)).astype("int64")
    satisfaction = np.clip(np.round(rng.normal(regime["satisfaction_mean"] - 0.25 * support, 0.9)), 1, 5)
    age = np.clip(np.round(rng.normal(46.0, 14.0, n)), 18, 90).astype("int64")
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "data_usage_gb": usage,
            "support_calls": support,
            "late_payments": late,
            "satisfaction": satisfaction.astype("int64"),
            "age": age,
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "region": region,
        }
    )


def _churn_logit_before(df: pd.DataFrame) -> np.ndarray:
    return (
        -2.8
        + 2.2 * (df["contract"] == "month_to_month")
        - 1.4 * (df["contract"] == "two_year")
        - 0.07 * (df["tenure_months"] - 20)
        + 0.05 * (df["monthly_charges"] - 60)
        + 0.7 * (df["support_calls"] - 1.2)
        + 0.9 * df["late_payments"]
        - 0.9 * (df["satisfaction"] - 3.5)
        + 0.8 * (df["payment_method"] == "electronic_check")
    ).to_numpy(dtype=float)


def _churn_logit_after(df: pd.DataFrame) -> np.ndarray:
    return (
        -2.2
        - 1.6 * (df["contract"] == "month_to_month")  # the retention discount works
        + 0.05 * (df["tenure_months"] - 20)  # legacy plans are the competitor's target
        + 0.012 * (df["data_usage_gb"] - 200)  # heavy users leave for the unlimited offer
        + 1.6 * (df["internet_service"] == "fiber")
        + 2.0 * df["region"].isin(["south", "east"])  # where the competitor launched
        + 0.3 * (df["support_calls"] - 2.4)
        - 0.4 * (df["satisfaction"] - 3.0)
    ).to_numpy(dtype=float)


def make_batch(seed: int, key: int, n: int, drifted: bool) -> pd.DataFrame:
    """One batch of ``n`` labelled customers; the same ``(seed, key)`` always gives the same rows."""
    rng = np.random.default_rng([seed, key])
    df = _features(rng, n, _AFTER if drifted else _BEFORE)
    logit = _churn_logit_after(df) if drifted else _churn_logit_before(df)
    df[TARGET] = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    return df


def generate(
    out: str | os.PathLike[str],
    *,
    start: str = DEFAULT_START,
    days: int = DEFAULT_DAYS,
    drift_day: int = DEFAULT_DRIFT_DAY,
    rows_per_day: int = DEFAULT_ROWS,
    train_rows: int = DEFAULT_TRAIN_ROWS,
    eval_rows: int = DEFAULT_EVAL_ROWS,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Write the stream under ``out`` and return its manifest (also written as ``manifest.json``).

    :param start: date of the first daily window (ISO ``YYYY-MM-DD``).
    :param days: number of daily windows.
    :param drift_day: index of the first drifted window (``days`` or more: no drift at all).
    :param rows_per_day: rows in each window.
    :param train_rows: rows of the initial training data (drawn before the first window).
    :param eval_rows: rows of the initial held-out evaluation data.
    :param seed: the stream is a pure function of the seed and these arguments.
    """
    if days < 1 or rows_per_day < 1 or train_rows < 1 or eval_rows < 1:
        raise ValueError("days, rows_per_day, train_rows and eval_rows must be positive")
    if drift_day < 0:
        raise ValueError(f"drift_day must be >= 0, got {drift_day}")
    first = dt.date.fromisoformat(start)
    out = os.path.abspath(os.fspath(out))
    windows_dir = os.path.join(out, "windows")
    os.makedirs(windows_dir, exist_ok=True)

    train_path = os.path.join(out, "train.parquet")
    eval_path = os.path.join(out, "eval.parquet")
    make_batch(seed, 1_000_001, train_rows, drifted=False).to_parquet(train_path, index=False)
    make_batch(seed, 1_000_002, eval_rows, drifted=False).to_parquet(eval_path, index=False)

    windows = []
    for i in range(days):
        date = (first + dt.timedelta(days=i)).isoformat()
        drifted = i >= drift_day
        batch = make_batch(seed, i, rows_per_day, drifted=drifted)
        path = os.path.join(windows_dir, f"{date}.parquet")
        batch.to_parquet(path, index=False)
        windows.append(
            {
                "date": date,
                "path": path,
                "rows": len(batch),
                "drifted": drifted,
                "churn_rate": round(float(batch[TARGET].mean()), 4),
            }
        )

    drift_date = (first + dt.timedelta(days=drift_day)).isoformat() if drift_day < days else None
    manifest = {
        "seed": seed,
        "target": TARGET,
        "numeric": NUMERIC,
        "categorical": CATEGORICAL,
        "train": train_path,
        "eval": eval_path,
        "train_rows": train_rows,
        "eval_rows": eval_rows,
        "drift_date": drift_date,
        "windows": windows,
    }
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write the stream into")
    parser.add_argument("--start", default=DEFAULT_START)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--drift-day", type=int, default=DEFAULT_DRIFT_DAY)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows per daily window")
    parser.add_argument("--train-rows", type=int, default=DEFAULT_TRAIN_ROWS)
    parser.add_argument("--eval-rows", type=int, default=DEFAULT_EVAL_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    manifest = generate(
        args.out,
        start=args.start,
        days=args.days,
        drift_day=args.drift_day,
        rows_per_day=args.rows,
        train_rows=args.train_rows,
        eval_rows=args.eval_rows,
        seed=args.seed,
    )
    print(
        f"wrote {len(manifest['windows'])} daily windows of {args.rows} rows to {args.out} "
        f"(training {manifest['train_rows']} rows, drift from {manifest['drift_date']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
