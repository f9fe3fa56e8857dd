"""render_report: Evidently's HTML with a banner that states the sample and the decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.drift import compare, render_report


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"amount": rng.normal(0, 1, 300), "plan": rng.choice(["x", "y"], 300)})
    current = pd.DataFrame({"amount": rng.normal(2, 1, 200), "plan": rng.choice(["x", "y"], 200)})
    reference["<empty>"] = current["<empty>"] = np.nan
    return reference, current


def test_banner_states_the_sample_and_the_decision(frames):
    reference, current = frames
    result = compare(reference, current)
    page = render_report(reference, current, result, sample_size=100)
    body = page.index("<body")
    banner = page.index("airflow-mlops decision on all rows: drift DETECTED")
    assert body < banner < page.index("</body>")
    assert "seeded random sample (seed 0) of 100 of 300 reference rows and 100 of 200 current rows" in page
    assert "1 of 2 columns drifted (share 0.500, threshold 0.500): amount" in page
    assert "<li>&lt;empty&gt;: skipped &mdash; all values are null" in page  # names are escaped


def test_unsampled_report_says_so(frames):
    reference, current = frames
    page = render_report(reference, current, compare(reference, current), sample_size=None)
    assert "computed on all 300 reference and 200 current rows" in page
