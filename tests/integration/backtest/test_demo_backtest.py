"""The backtest on the demo stream, as a user runs it, in under 3 minutes; its page in Chromium.

``python -m airflow_mlops.backtest`` on the demo's folder of daily windows with the reference
policy (what the DAGs read) and the reference entrypoint, then the HTML page opened in headless
Chromium (Debian's, installed by tests/e2e/setup.sh) and read as a person would: the plot has a
line per policy, the totals table a row per policy with every seed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.system import ensure_system

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
BUDGET_SECONDS = 180
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("demo_data", REPO / "include" / "demo" / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    stream = tmp_path_factory.mktemp("demo-stream")
    data.generate(stream)
    out = tmp_path_factory.mktemp("report")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["PYTHONPATH"] = str(REPO)
    began, cpu_before = time.monotonic(), _children_cpu()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_mlops.backtest",
            str(stream / "windows"),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--ceiling",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a safeguard on a shared machine; the budget is checked in CPU seconds below
    )
    seconds, cpu = time.monotonic() - began, _children_cpu() - cpu_before
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "stdout": proc.stdout, "stderr": proc.stderr, "seconds": seconds, "cpu": cpu}


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_runs_in_under_three_minutes_on_two_cores_with_progress_and_a_table(demo_report):
    # The work is measured in CPU seconds (the machine is shared, wall time is not the backtest's):
    # two cores for three minutes. The wall time is reported for the record.
    print(f"backtest on the demo stream: {demo_report['seconds']:.0f} s wall, {demo_report['cpu']:.0f} s CPU")
    assert demo_report["cpu"] < 2 * BUDGET_SECONDS, f"used {demo_report['cpu']:.0f} CPU seconds"
    assert "seed 5 done" in demo_report["stderr"]  # progress on a long run
    stdout = demo_report["stdout"]
    for name in ("never", "every", "calendar", "triggered"):
        assert f"\n{name} " in stdout
    assert "backtest.html" in stdout


def test_triggered_keeps_up_with_a_tenth_of_the_retrainings(demo_report):
    summary = json.loads((demo_report["out"] / "backtest.json").read_text())
    assert summary["seeds"] == [1, 2, 3, 4, 5]
    totals = summary["totals"]
    assert totals["triggered"]["mean"] > totals["calendar"]["mean"] > totals["never"]["mean"]
    verdict = summary["triggered_vs_every"]
    assert verdict["retrain_ratio"] <= 0.25
    # measured (docs/policy.md): 0.17 points behind every window on the mean, 0.43 on the worst seed
    assert verdict["worst_seed_gap_points"] <= 0.5, verdict["reasons"]
    drift_window = next(w for w in summary["windows"] if any(w["policies"]["never"]["feature_drift"]))
    assert drift_window["window"] == "2025-03-07"  # the demo's drift date, seen on the model inputs


def test_the_gap_to_every_splits_into_parts_that_add_up(demo_report):
    summary = json.loads((demo_report["out"] / "backtest.json").read_text())
    gap = summary["triggered_gap"]
    assert [s["seed"] for s in gap["per_seed"]] == [1, 2, 3, 4, 5]
    # the parts add up to the verdict's gap on the mean (every - triggered, in points)
    assert sum(gap["mean"][k] for k in gap["parts"]) == pytest.approx(
        -summary["triggered_vs_every"]["mean_gap_points"]
    )
    for seed in gap["per_seed"]:
        triggered = summary["totals"]["triggered"]["per_seed"][seed["seed"] - 1]
        every = summary["totals"]["every"]["per_seed"][seed["seed"] - 1]
        assert sum(seed[k] for k in gap["parts"]) == pytest.approx((triggered["mean"] - every["mean"]) * 100)
    # measured (docs/policy.md): after the drift the triggered policy is ahead with one retraining
    assert gap["mean"]["after the first signal"] > 0 > gap["mean"]["before the first signal"]
    assert "where triggered gains (+) or loses (-) against every" in demo_report["stdout"]


def test_the_ceiling_bounds_the_triggered_policy_within_its_budget(demo_report):
    summary = json.loads((demo_report["out"] / "backtest.json").read_text())
    top, triggered = summary["ceiling"], summary["totals"]["triggered"]
    assert (top["retrainings"], top["every_retrainings"]) == (12, 50)  # a quarter of 5 x 10
    assert top["mean"] >= triggered["mean"]
    for seed, run in zip(top["per_seed"], triggered["per_seed"], strict=True):
        assert seed["retrainings"] == 2
        if run["retrainings"] <= 2:  # within the seed's quarter: no policy beats hindsight
            assert seed["mean"] >= run["mean"] - 1e-12, (seed, run)
    assert "ceiling with hindsight" in demo_report["stdout"]


def test_the_page_shows_the_plot_and_the_tables_in_chromium(demo_report, tmp_path):
    ensure_system("chromium")
    from playwright.sync_api import sync_playwright

    page_path = demo_report["out"] / "backtest.html"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(page_path.as_uri())
            assert page.title() == "Retraining policy backtest"
            plot = page.locator("#metric-plot")
            assert plot.is_visible()
            box = plot.bounding_box()
            assert box and box["width"] > 600 and box["height"] > 200
            series = page.locator("#metric-plot polyline.series")
            assert series.count() == 4
            assert sorted(series.evaluate_all("els => els.map(e => e.dataset.policy)")) == sorted(
                ["never", "every", "calendar", "triggered"]
            )
            rows = page.locator("#totals tr[data-policy]")
            assert rows.count() == 4
            triggered = page.locator("#totals tr[data-policy='triggered']").inner_text()
            assert len(triggered.split("\t")) >= 2 + 5  # policy, mean, one cell per seed, ...
            assert "the bar" in page.locator("#verdict").inner_text()
            assert "Ceiling with hindsight" in page.locator("#ceiling").inner_text()
            assert "after the first signal" in page.locator("#gap").inner_text()
            page.screenshot(path=str(tmp_path / "backtest.png"), full_page=True)
            assert (tmp_path / "backtest.png").stat().st_size > 10_000
        finally:
            browser.close()
