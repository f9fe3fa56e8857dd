"""The drift verdict against Evidently's own DataDriftPreset, and the bad-input rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core import drift
from airflow_mlops.core.drift import DriftConfigError, DriftInputError, compare

# Evidently's display names of its stat tests, back to the registry names the summary uses
DISPLAY = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Hellinger distance": "hellinger",
}


@pytest.fixture(scope="module")
def evidently():
    """Run ``Report([DataDriftPreset(**kw)])`` and return ({column: (method, score, threshold, drifted)}, share)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def run(reference: pd.DataFrame, current: pd.DataFrame, **kwargs):
        snap = Report([DataDriftPreset(**kwargs)], include_tests=True).run(current, reference).dict()
        verdicts: dict[str, list] = {}
        share = None
        for metric in snap["metrics"]:
            config = metric["config"]
            if config["type"].endswith("ValueDrift"):
                verdicts[config["column"]] = [
                    DISPLAY.get(config["method"], config["method"]),
                    float(metric["value"]),
                    config["threshold"],
                ]
            elif config["type"].endswith("DriftedColumnsCount"):
                share = metric["value"]["share"]
        for test in snap["tests"]:
            if test["id"] == "drift":
                verdicts[test["metric_config"]["params"]["column"]].append(test["status"] == "FAIL")
        return {c: tuple(v) for c, v in verdicts.items()}, share

    return run


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    moved = shift != 0
    df = pd.DataFrame(
        {
            "num": rng.normal(shift, 1.0, rows),
            "num_nulls": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(shift, 2.0, rows)),
            "int_num": rng.integers(0, 100, rows) + int(shift * 20),
            "int_cat": rng.integers(0, 3, rows),
            "few_values": rng.choice([0.5, 1.5, 2.5, 3.5], rows, p=[0.4, 0.3, 0.2, 0.1] if moved else None),
            "binary_num": rng.choice([0.0, 1.0], rows),
            "cat3": rng.choice(["x", "y", "z"], rows, p=[0.3, 0.3, 0.4] if moved else [0.5, 0.3, 0.2]),
            "cat2": rng.choice(["p", "q"], rows),
            "flag": rng.random(rows) < 0.5 + shift / 5,
            "cat40": rng.choice([f"k{i:02d}" for i in range(40)], rows),
        }
    )
    df.loc[df.index[:2], "num_nulls"] = [np.inf, -np.inf]  # ±inf count as missing, like nulls
    return df


def _assert_same(ours: drift.DriftResult, theirs: dict) -> None:
    assert set(ours.columns) == set(theirs)
    for name, (method, score, threshold, drifted) in theirs.items():
        mine = ours.columns[name]
        assert (mine.method, mine.threshold, mine.drifted) == (method, threshold, drifted), name
        assert mine.score == pytest.approx(score, rel=1e-6, abs=1e-300), name


@pytest.mark.parametrize(
    ("ref_rows", "cur_rows"),
    [pytest.param(600, 400, id="small-sample"), pytest.param(4000, 2500, id="large-sample")],
)
@pytest.mark.parametrize("shift", [0.0, 0.3], ids=["same", "shifted"])
def test_default_tests_equal_evidently(evidently, ref_rows, cur_rows, shift):
    reference, current = _frame(ref_rows, 1), _frame(cur_rows, 2, shift)
    theirs, their_share = evidently(reference, current)
    ours = compare(reference, current)
    _assert_same(ours, theirs)
    methods = {c.method for c in ours.tested}
    assert methods == ({"ks", "chisquare", "z"} if ref_rows <= 1000 else {"wasserstein", "jensenshannon"})
    if shift:
        assert {"num", "cat3", "few_values"} <= set(ours.drifted_columns)
    else:
        assert not {"num", "num_nulls", "int_num", "cat3"} & set(ours.drifted_columns)
    # Evidently's dataset count takes another path that keeps ±inf when a column has no nulls;
    # without such columns it agrees with the per-column verdicts
    clean = [c for c in reference.columns if c != "num_nulls"]
    theirs_clean, their_share = evidently(reference[clean], current[clean])
    ours_clean = compare(reference[clean], current[clean])
    assert ours_clean.share == pytest.approx(their_share)
    assert ours_clean.drift_detected == (their_share >= 0.5)


def test_configured_methods_and_thresholds_equal_evidently(evidently):
    reference, current = _frame(3000, 3), _frame(2000, 4, 0.1)
    settings = dict(
        method="psi",
        per_column_method={
            "num": "jensenshannon",
            "int_num": "ks",
            "cat3": "chisquare",
            "num_nulls": "hellinger",
        },
        threshold=0.05,
        per_column_threshold={"num": 0.02, "cat40": 0.3},
    )
    theirs, _ = evidently(reference, current, **settings)
    ours = compare(reference, current, **settings)
    _assert_same(ours, theirs)
    assert ours.columns["num"].method == "jensenshannon" and ours.columns["num"].threshold == 0.02
    assert ours.columns["num_nulls"].method == "hellinger"  # delegated to Evidently's function
    assert ours.columns["cat2"].method == "psi" and ours.columns["cat2"].threshold == 0.05


def test_dataset_verdict_uses_drift_share():
    reference, current = _frame(3000, 5), _frame(3000, 6, 0.3)
    result = compare(reference, current, columns=["num", "cat3", "cat2", "cat40"])
    assert result.drifted_columns == ["num", "cat3"]
    assert result.share == 0.5 and result.drift_detected
    assert not compare(
        reference, current, columns=["num", "cat3", "cat2", "cat40"], drift_share=0.75
    ).drift_detected
    summary = result.summary()
    assert summary["drifted_columns"] == ["num", "cat3"] and summary["number_of_columns"] == 4
    assert set(summary["per_column"]["num"]) >= {"method", "score", "threshold", "drifted"}


def test_columns_that_cannot_be_tested_are_skipped_with_a_reason():
    rng = np.random.default_rng(7)
    n = 300
    reference = pd.DataFrame(
        {
            "ok": rng.normal(0, 1, n),
            "empty_now": rng.normal(0, 1, n),
            "empty_before": np.full(n, np.nan),
            "constant": np.full(n, 3.0),
            "mixed": pd.Series(["a", 1] * (n // 2), dtype=object),
            "mixed_before": pd.Series(["a", 1.5] * (n // 2), dtype=object),
            "type_change": rng.normal(0, 1, n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )
    current = reference.copy()
    current["empty_now"] = np.nan
    current["empty_before"] = rng.normal(0, 1, n)
    current["mixed_before"] = rng.choice(["a", "b"], n)
    current["type_change"] = rng.choice(["a", "b"], n)
    result = compare(reference, current)
    skipped = result.skipped_columns
    assert set(skipped) == {
        "empty_now",
        "empty_before",
        "constant",
        "mixed",
        "mixed_before",
        "type_change",
        "when",
    }
    assert "all values are null" in skipped["empty_now"] and "current" in skipped["empty_now"]
    assert "all values are null in reference" in skipped["empty_before"]
    assert "constant" in skipped["constant"] and "3.0" in skipped["constant"]
    assert "mixed types (int and str) in current" in skipped["mixed"]
    assert "mixed types (float and str) in reference" in skipped["mixed_before"]
    assert "incompatible types" in skipped["type_change"] and "float64" in skipped["type_change"]
    assert "date/time" in skipped["when"]
    # skipped columns are not counted: the share is over the tested ones
    assert [c.column for c in result.tested] == ["ok"] and result.share == 0.0
    assert result.summary()["per_column"]["mixed"] == {
        "skipped": skipped["mixed"],
        "type": None,
        "drifted": None,
    }


def test_bad_input_is_an_error_never_no_drift():
    reference, current = _frame(200, 1), _frame(200, 2)
    with pytest.raises(
        DriftInputError, match=r"only in reference: \['cat40'\]; only in current: \['extra'\]"
    ):
        compare(reference, current.drop(columns="cat40").assign(extra=1.0))
    with pytest.raises(DriftInputError, match=r"missing from current: \['nope'\]"):
        compare(reference, current, columns=["num", "nope"])
    with pytest.raises(DriftInputError, match="current data has no rows"):
        compare(reference, current.iloc[:0])
    with pytest.raises(DriftInputError, match="no column could be tested.*constant"):
        compare(pd.DataFrame({"c": [1.0] * 5}), pd.DataFrame({"c": [1.0] * 5}))
    with pytest.raises(
        DriftConfigError, match="column 'cat3' is categorical; method 'ks' applies to numerical"
    ):
        compare(reference, current, per_column_method={"cat3": "ks"})
    with pytest.raises(
        DriftConfigError, match=r"per-column settings name columns that are not compared: \['typo'\]"
    ):
        compare(reference, current, per_column_threshold={"typo": 0.1})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"drift_share": 0}, "drift_share must be a number in"),
        ({"drift_share": 1.5}, "drift_share must be a number in"),
        ({"method": "kolmogorov"}, "unknown drift method 'kolmogorov'"),
        ({"per_column_method": {"a": "nope"}}, r"per_column_method\['a'\]: unknown drift method"),
        ({"threshold": -0.1}, "threshold must be a non-negative number"),
        ({"per_column_threshold": {"a": "high"}}, r"per_column_threshold\['a'\] must be"),
        ({"columns": "num"}, "columns must be a list"),
        ({"columns": []}, "columns is an empty list"),
    ],
)
def test_settings_are_validated(settings, message):
    with pytest.raises(DriftConfigError, match=message):
        drift.validate_settings(**settings)
