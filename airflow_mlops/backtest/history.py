"""A user's labelled history, cut into ordered windows.

Two shapes are accepted:

* a **folder of time-partitioned files** (``2025-03-01.parquet``, ``date=2025-03-01/part-0.parquet``
  ...): each file, or each sub-folder of parts, is one window, in the order of the names;
* **one table with a timestamp column** (a file, a folder of parts, or a DataFrame): rows are
  grouped into windows of ``window`` (a pandas frequency: ``D``, ``W``, ``MS``, ``QS``, ``YS`` ...).

Every window must hold labels: a target column that is missing, or a window whose target is
empty, is an error naming the window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class BacktestInputError(ValueError):
    """The history or a setting cannot be replayed; the message names the file, column or setting."""


@dataclass
class Window:
    label: str  # what the window is called in the reports (a date, a file name)
    frame: pd.DataFrame  # labelled rows: the model's columns and the target only
    source: str  # where it came from (a file, a folder, or "<label> of <table>")
    unlabelled: int = 0  # rows dropped because their target was missing


@dataclass
class History:
    windows: list[Window]
    target: str
    source: str

    @property
    def columns(self) -> list[str]:
        return list(self.windows[0].frame.columns)


def load_history(
    source: Any,
    *,
    target: str,
    timestamp: str | None = None,
    window: str | None = None,
    drop: list[str] | None = None,
) -> History:
    """Read ``source`` into ordered, labelled windows.

    :param source: a folder of per-window files, a file or folder holding one table, a DataFrame,
        or a list of ``(label, DataFrame)`` windows in time order.
    :param target: the label column.
    :param timestamp: the timestamp column of a single table (then ``window`` is required); with a
        folder of windows it is only dropped from the columns.
    :param window: pandas frequency of the windows cut from a single table (``D``, ``W``, ``MS``, ``YS`` ...).
    :param drop: columns that are neither features nor target (ids ...): left out of everything.
    """
    import pandas as pd

    drop = list(drop or [])
    if isinstance(source, (list, tuple)):
        windows = [
            _window(df, str(label), f"window {label}", target=target, drop=drop) for label, df in source
        ]
        return _checked(History(windows, target, "<windows>"))
    if isinstance(source, pd.DataFrame):
        if timestamp is None:
            raise BacktestInputError(
                "the history is one table: name its timestamp column (timestamp=..., --timestamp)"
            )
        return _split_table(
            source, "<DataFrame>", target=target, timestamp=timestamp, window=window, drop=drop
        )
    path = os.fspath(source)
    if not os.path.exists(path):
        raise BacktestInputError(f"history not found: {path}")
    if timestamp is not None and window is not None:
        return _split_table(_read(path), path, target=target, timestamp=timestamp, window=window, drop=drop)
    if os.path.isdir(path):
        parts = _window_parts(path)
        if len(parts) >= 2:
            windows = [
                _window(
                    _read(part), label, part, target=target, drop=[*drop, *([timestamp] if timestamp else [])]
                )
                for label, part in parts
            ]
            return _checked(History(windows, target, path))
    if timestamp is None:
        raise BacktestInputError(
            f"history {path} is one table: name its timestamp column (--timestamp) and the window "
            "length (--window D|W|MS|YS ...), or pass a folder with one file (or sub-folder) per window"
        )
    raise BacktestInputError(
        f"history {path}: with --timestamp {timestamp!r}, --window is required (D, W, MS, YS ...)"
    )


def _read(path: str) -> pd.DataFrame:
    from airflow_mlops.core.data import DataReadError, read_table

    try:
        return read_table(path)
    except DataReadError as err:
        raise BacktestInputError(str(err)) from err


def _window_parts(folder: str) -> list[tuple[str, str]]:
    """``(label, path)`` per window: the data files and the sub-folders of ``folder``, by name."""
    from airflow_mlops.core.data import CSV_SUFFIXES, PARQUET_SUFFIXES

    parts = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(("_", ".")):
            continue
        full = os.path.join(folder, name)
        if os.path.isdir(full) or name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES):
            label = name.split("=", 1)[-1] if os.path.isdir(full) else _stem(name)
            parts.append((label, full))
    return parts


def _stem(name: str) -> str:
    from airflow_mlops.core.data import CSV_SUFFIXES, PARQUET_SUFFIXES

    for suffix in sorted(PARQUET_SUFFIXES + CSV_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _split_table(
    df: pd.DataFrame, where: str, *, target: str, timestamp: str, window: str | None, drop: list[str]
) -> History:
    import pandas as pd

    if timestamp not in df.columns:
        raise BacktestInputError(
            f"history {where} has no timestamp column {timestamp!r}; columns: {list(df.columns)}"
        )
    if not window:
        raise BacktestInputError(f"history {where}: name the window length (--window D|W|MS|YS ...)")
    try:
        when = pd.to_datetime(df[timestamp])
    except (ValueError, TypeError) as err:
        raise BacktestInputError(
            f"history {where}: timestamp column {timestamp!r} is not a date/time: {err}"
        ) from err
    if when.isna().any():
        raise BacktestInputError(
            f"history {where}: timestamp column {timestamp!r} has {int(when.isna().sum())} missing values"
        )
    try:
        periods = when.dt.to_period(_period_alias(window))
    except (ValueError, TypeError) as err:
        raise BacktestInputError(
            f"window {window!r} is not a pandas frequency (D, W, MS, QS, YS ...): {err}"
        ) from err
    frame = df.drop(columns=[timestamp])
    windows = []
    for period, rows in frame.groupby(periods.to_numpy(), sort=True):
        label = str(period)
        windows.append(
            _window(rows.reset_index(drop=True), label, f"{label} of {where}", target=target, drop=drop)
        )
    return _checked(History(windows, target, where))


def _period_alias(window: str) -> str:
    """``to_period`` wants period aliases: ``MS``/``YS``/``QS`` (period starts) mean ``M``/``Y``/``Q``."""
    alias = window.strip()
    for start, period in (("MS", "M"), ("QS", "Q"), ("YS", "Y"), ("AS", "Y")):
        if alias.upper().endswith(start):
            return alias[: -len(start)] + period
    return alias


def _window(df: pd.DataFrame, label: str, source: str, *, target: str, drop: list[str]) -> Window:
    if target not in df.columns:
        raise BacktestInputError(
            f"window {label} ({source}) has no target column {target!r}; columns: {list(df.columns)}"
        )
    df = df.drop(columns=[c for c in drop if c in df.columns])
    labelled = df[target].notna()
    if not labelled.any():
        raise BacktestInputError(
            f"window {label} ({source}) has no labels: target column {target!r} is empty in all {len(df)} rows"
        )
    unlabelled = int((~labelled).sum())
    if unlabelled:
        df = df[labelled].reset_index(drop=True)
    return Window(label=label, frame=df, source=source, unlabelled=unlabelled)


def _checked(history: History) -> History:
    if len(history.windows) < 2:
        raise BacktestInputError(
            f"history {history.source} makes {len(history.windows)} window(s): a backtest needs at least 2 "
            "(one to train the first model on, one to serve)"
        )
    first = history.windows[0]
    for w in history.windows[1:]:
        if set(w.frame.columns) != set(first.frame.columns):
            missing = sorted(set(first.frame.columns) - set(w.frame.columns))
            extra = sorted(set(w.frame.columns) - set(first.frame.columns))
            raise BacktestInputError(
                f"window {w.label} ({w.source}) has other columns than window {first.label}: "
                f"missing {missing or 'none'}, extra {extra or 'none'}"
            )
    if len(first.frame.columns) < 2:
        raise BacktestInputError(f"history {history.source} has no feature column besides {history.target!r}")
    return history
