"""Tiny synthetic labelled histories: a few windows of a two-feature stream with a drift in it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_window(seed: int, n: int = 120, drifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0 if drifted else 0.0, 1.0, n)
    colour = rng.choice(["red", "blue"], size=n)
    logit = (-x if drifted else x) + (colour == "red")
    return pd.DataFrame(
        {"x": x, "colour": colour, "label": (rng.random(n) < 1 / (1 + np.exp(-3 * logit))).astype(int)}
    )


@pytest.fixture
def windows() -> list[pd.DataFrame]:
    return [make_window(i, drifted=i >= 3) for i in range(5)]


@pytest.fixture
def window_folder(tmp_path, windows):
    folder = tmp_path / "history"
    folder.mkdir()
    for i, df in enumerate(windows):
        df.to_parquet(folder / f"2025-01-0{i + 1}.parquet", index=False)
    return folder
