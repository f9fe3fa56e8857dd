"""Reading a labelled history into windows, and the errors that name what is wrong."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_mlops.backtest.history import BacktestInputError, load_history


def test_a_folder_of_files_is_one_window_per_file_in_name_order(window_folder, windows):
    history = load_history(window_folder, target="label")
    assert [w.label for w in history.windows] == [f"2025-01-0{i}" for i in range(1, 6)]
    pd.testing.assert_frame_equal(history.windows[3].frame, windows[3])


def test_partition_folders_and_csv_files_are_windows_too(tmp_path, windows):
    for i, df in enumerate(windows[:3]):
        part = tmp_path / "h" / f"date=2025-02-0{i + 1}"
        part.mkdir(parents=True)
        df.to_csv(part / "part-0.csv", index=False)
    history = load_history(tmp_path / "h", target="label")
    assert [w.label for w in history.windows] == ["2025-02-01", "2025-02-02", "2025-02-03"]


def test_a_table_with_a_timestamp_column_is_cut_into_windows(tmp_path, windows):
    df = pd.concat(windows, ignore_index=True)
    df["when"] = pd.date_range("2025-01-01", periods=len(df), freq="6h")
    df.to_parquet(tmp_path / "all.parquet", index=False)
    history = load_history(tmp_path / "all.parquet", target="label", timestamp="when", window="W")
    assert len(history.windows) >= 2
    assert sum(len(w.frame) for w in history.windows) == len(df)
    assert "when" not in history.columns  # the timestamp is not a feature


def test_rows_without_a_label_are_left_out_and_counted(window_folder):
    df = pd.read_parquet(window_folder / "2025-01-02.parquet")
    df["label"] = df["label"].astype("float")
    df.loc[:9, "label"] = None
    df.to_parquet(window_folder / "2025-01-02.parquet", index=False)
    history = load_history(window_folder, target="label")
    assert history.windows[1].unlabelled == 10
    assert len(history.windows[1].frame) == len(df) - 10


def test_no_timestamp_column_is_an_error_naming_it(tmp_path, windows):
    pd.concat(windows).to_parquet(tmp_path / "all.parquet", index=False)
    with pytest.raises(BacktestInputError, match="no timestamp column 'event_time'"):
        load_history(tmp_path / "all.parquet", target="label", timestamp="event_time", window="D")


def test_one_table_without_a_timestamp_says_how_to_cut_it(tmp_path, windows):
    pd.concat(windows).to_parquet(tmp_path / "all.parquet", index=False)
    with pytest.raises(BacktestInputError, match="--timestamp"):
        load_history(tmp_path / "all.parquet", target="label")


def test_a_window_with_no_labels_is_an_error_naming_the_window(window_folder):
    df = pd.read_parquet(window_folder / "2025-01-04.parquet")
    df["label"] = None
    df.to_parquet(window_folder / "2025-01-04.parquet", index=False)
    with pytest.raises(BacktestInputError, match=r"window 2025-01-04 .*has no labels: target column 'label'"):
        load_history(window_folder, target="label")


def test_a_missing_target_is_an_error_naming_the_target_and_window(window_folder):
    with pytest.raises(BacktestInputError, match=r"window 2025-01-01 .*no target column 'churned'"):
        load_history(window_folder, target="churned")


def test_windows_with_other_columns_are_an_error(window_folder):
    df = pd.read_parquet(window_folder / "2025-01-05.parquet").drop(columns=["colour"])
    df.to_parquet(window_folder / "2025-01-05.parquet", index=False)
    with pytest.raises(BacktestInputError, match=r"window 2025-01-05 .*missing \['colour'\]"):
        load_history(window_folder, target="label")


def test_a_missing_history_and_a_single_window_are_errors(tmp_path, windows):
    with pytest.raises(BacktestInputError, match="history not found"):
        load_history(tmp_path / "nope", target="label")
    with pytest.raises(BacktestInputError, match="at least 2"):
        load_history([("only", windows[0])], target="label")
