"""The whole replay on a tiny history with the real training entrypoint, the reports and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlops.backtest import backtest
from airflow_mlops.backtest.__main__ import main
from airflow_mlops.backtest.report import table
from airflow_mlops.policy import RetrainingPolicy

REPO = Path(__file__).resolve().parents[3]
ENTRYPOINT = str(REPO / "include" / "training" / "train.py")
# small and fast: the test is about the replay, not the model
POLICY = RetrainingPolicy(
    hyperparameters={"model": "logistic_regression"},
    thresholds={},
    training_windows=2,
    calendar_every=2,
    drift_share=0.5,  # the tiny stream has two inputs; its drift moves one of them
)


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    from tests.unit.backtest.conftest import make_window

    windows = [(f"w{i}", make_window(i, drifted=i >= 3)) for i in range(5)]
    out = tmp_path_factory.mktemp("report")
    lines: list[str] = []
    result = backtest(
        windows, policy=POLICY, entrypoint=ENTRYPOINT, seeds=2, out_dir=str(out), progress=lines.append
    )
    result["_progress"] = lines
    return result


def test_every_policy_serves_every_window_after_the_first_model(summary):
    assert summary["policies"] == ["never", "every", "calendar", "triggered"]
    assert [w["window"] for w in summary["windows"]] == ["w2", "w3", "w4"]  # w0-w1 train the first model
    totals = summary["totals"]
    assert totals["never"]["retrainings"] == 0
    assert totals["every"]["retrainings"] == 2  # nothing is retrained after the last window
    assert totals["calendar"]["retrainings"] == 1  # after the 2nd window served
    assert all(len(t["per_seed"]) == 2 for t in totals.values())
    assert len(summary["_progress"]) == 2 * 3  # one line per window and seed


def test_the_drift_is_seen_and_retraining_after_it_pays(summary):
    drifted = summary["windows"][1]["policies"]["triggered"]  # w3: the first drifted window
    assert all(drifted["feature_drift"])
    assert all(drifted["retrained"])
    last = summary["windows"][2]["policies"]
    assert last["triggered"]["value"] > last["never"]["value"]
    assert summary["totals"]["every"]["training_seconds"] > 0


def test_the_policy_the_dags_read_is_reported(summary):
    assert summary["policy"]["training_windows"] == 2
    assert summary["entrypoint"] == ENTRYPOINT
    assert summary["triggered_vs_every"]["reasons"]


def test_json_html_and_table(summary):
    files = summary["files"]
    stored = json.loads(Path(files["json"]).read_text())
    assert stored["totals"]["every"]["retrainings"] == 2
    page = Path(files["html"]).read_text()
    assert page.count('class="series"') == 4
    assert '<table id="totals">' in page
    text = table(summary)
    assert "triggered vs every window" in text
    assert "seed 1" in text and "seed 2" in text


def test_since_drift_trains_on_the_windows_since_the_change_and_refreshes_as_they_grow(tmp_path):
    from tests.unit.backtest.conftest import make_window

    windows = [(f"w{i}", make_window(i, drifted=i >= 3)) for i in range(7)]
    # the drift moves x; on 120 rows the two-valued colour drifts by chance now and then (a new regime)
    policy = POLICY.replace(training_windows="since_drift", refresh_growth=2.0, drift_columns=("x",))
    result = backtest(
        windows, policy=policy, entrypoint=ENTRYPOINT, seeds=1, policies=["triggered"], out_dir=str(tmp_path)
    )
    served = {w["window"]: w["policies"]["triggered"] for w in result["windows"]}
    assert list(served) == ["w1", "w2", "w3", "w4", "w5", "w6"]  # the first model trains on w0 alone
    # trained on w0 alone, one new window doubles the data: a refresh on w0-w1
    assert served["w1"]["retrained"] == [True] and served["w1"]["training_start"] == ["w0"]
    assert "refresh" in served["w1"]["retrain_reasons"][0][0]
    # the drift starts a regime: the retraining after it trains on the drifted window only ...
    assert served["w3"]["feature_drift"] == [True] and served["w3"]["training_start"] == ["w3"]
    # ... and every later one on the windows since (a refresh: one new window after training on one)
    assert served["w4"]["training_start"] == ["w3"] and "refresh" in served["w4"]["retrain_reasons"][0][0]
    later = [w["training_start"][0] for name, w in served.items() if name > "w3" and w["retrained"][0]]
    assert later and set(later) == {"w3"}


def test_cli_errors_name_the_missing_thing(tmp_path, window_folder, capsys):
    code = main([str(tmp_path / "one.parquet"), "--entrypoint", ENTRYPOINT, "--out", str(tmp_path / "r")])
    assert code == 2
    assert "history not found" in capsys.readouterr().err
    code = main(
        [str(window_folder), "--target", "churned", "--entrypoint", ENTRYPOINT, "--out", str(tmp_path / "r")]
    )
    assert code == 2
    assert "no target column 'churned'" in capsys.readouterr().err
    code = main(
        [str(window_folder), "--entrypoint", str(tmp_path / "train.py"), "--out", str(tmp_path / "r")]
    )
    assert code == 2
    assert "training entrypoint not found" in capsys.readouterr().err


def test_a_failing_entrypoint_reports_its_own_error(tmp_path, window_folder):
    from airflow_mlops.backtest.training import TrainingFailed

    script = tmp_path / "train.py"
    script.write_text("import sys\nprint('no GPU here', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(TrainingFailed, match="no GPU here"):
        backtest(str(window_folder), policy=POLICY, entrypoint=str(script), seeds=1)


def test_the_ceiling_scores_every_candidate_on_every_later_window_as_the_replay_does():
    from airflow_mlops.backtest.history import load_history
    from airflow_mlops.backtest.replay import replay_seed
    from airflow_mlops.backtest.report import ceiling
    from tests.unit.backtest.conftest import make_window

    history = load_history([(f"w{i}", make_window(i, drifted=i >= 4)) for i in range(8)], target="label")
    run = replay_seed(history, POLICY, entrypoint=ENTRYPOINT, seed=1, initial_windows=2, ceiling=True)
    # the first model (trained on w0-w1) and the candidate after each served window but the last
    assert sorted(run.hindsight) == [1, 2, 3, 4, 5, 6]
    assert all(sorted(run.hindsight[s]) == list(range(s + 1, 8)) for s in run.hindsight)
    # a value is what the replay records when that model serves that window
    assert [r.value for r in run.policies["never"].records] == [run.hindsight[1][t] for t in range(2, 8)]
    every = run.policies["every"].records
    promoted = [t for t in range(3, 8) if every[t - 3].promoted]  # after window t - 1: served t
    assert promoted
    assert [every[t - 2].value for t in promoted] == [run.hindsight[t - 1][t] for t in promoted]

    top = ceiling([run], POLICY.metric)
    assert (top["retrainings"], top["every_retrainings"]) == (1, 5)  # a quarter of 5, rounded down
    one_promotion = [
        (
            sum(run.hindsight[1][t] for t in range(2, s + 1))
            + sum(run.hindsight[s][t] for t in range(s + 1, 8))
        )
        / 6
        for s in range(2, 7)
    ]
    assert top["mean"] == pytest.approx(max([run.policies["never"].mean, *one_promotion]))
    (seed,) = top["per_seed"]
    assert (seed["seed"], seed["retrainings"], seed["mean"]) == (1, 1, top["mean"])
    assert seed["curve"] == pytest.approx([run.policies["never"].mean, top["mean"]])  # 0, then 1 retraining
    if run.policies["triggered"].retrainings <= 1:  # within the budget: the ceiling bounds it
        assert run.policies["triggered"].mean <= top["mean"] + 1e-12


def test_the_ceiling_is_reported_in_the_table_and_the_page(tmp_path):
    from tests.unit.backtest.conftest import make_window

    windows = [(f"w{i}", make_window(i, drifted=i >= 4)) for i in range(8)]
    result = backtest(
        windows, policy=POLICY, entrypoint=ENTRYPOINT, seeds=2, out_dir=str(tmp_path), ceiling=True
    )
    top = result["ceiling"]
    assert (top["retrainings"], top["every_retrainings"]) == (2, 10)  # over both seeds
    assert [s["seed"] for s in top["per_seed"]] == [1, 2]
    assert top["mean"] >= result["totals"]["never"]["mean"]
    assert "ceiling with hindsight: " in table(result)
    assert "points vs every" in table(result)
    page = Path(result["files"]["html"]).read_text()
    assert "<p id='ceiling'>Ceiling with hindsight: " in page
    assert json.loads(Path(result["files"]["json"]).read_text())["ceiling"] == top
    assert backtest(windows, policy=POLICY, entrypoint=ENTRYPOINT, seeds=1)["ceiling"] is None


def test_the_ceiling_refuses_a_training_window_that_depends_on_decisions(tmp_path, window_folder, capsys):
    code = main(
        [
            str(window_folder),
            "--entrypoint",
            ENTRYPOINT,
            "--training-windows",
            "since_drift",
            "--ceiling",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    assert "ceiling with hindsight needs a fixed training window" in capsys.readouterr().err
