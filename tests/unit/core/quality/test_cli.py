"""The command line, in process, against the real Great Expectations 1.x."""

from __future__ import annotations

from airflow_mlops.core.quality.cli import main
from tests.unit.core.quality.samples import reference_frame


def test_cli_suggest_then_check(tmp_path, capsys):
    data = tmp_path / "ref.csv"
    reference_frame().to_csv(data, index=False)
    out = tmp_path / "ref_suite.json"
    assert main(["suggest", str(data), "-o", str(out), "--max-categories", "5"]) == 0
    assert "expectations to" in capsys.readouterr().out
    html = tmp_path / "r.html"
    assert main(["check", str(data), str(out), "--html", str(html)]) == 0
    assert "Data quality gate passed" in capsys.readouterr().out
    assert "PASSED" in html.read_text()
    bad = reference_frame()
    bad["city"] = "x"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["check", str(tmp_path / "bad.csv"), str(out), "--fail-on", "warning"]) == 1
    assert (
        "[warning] column 'city': 300 of 300 values (100.0%) not in ['lyon', 'paris']"
        in capsys.readouterr().out
    )
    assert main(["check", str(tmp_path / "nope.csv"), str(out)]) == 2
    assert "error: data not found" in capsys.readouterr().out
