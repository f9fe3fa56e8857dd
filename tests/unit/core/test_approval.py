"""The approval request's markdown: a side-by-side table, links to both versions, and user text
that cannot forge a section."""

from __future__ import annotations

from airflow_mlops.core.approval import approval_body, md_text, metrics_table

RECORD = {
    "decision": "reject",
    "reasons": ["candidate accuracy 0.7012 does not beat champion v5 0.8123 by more than 0.0000"],
    "candidate": {"version": "7", "metrics": {"accuracy": 0.70123456, "f1": 0.61, "roc_auc": None}},
    "champion": {"version": "5", "metrics": {"accuracy": 0.8123456, "f1": 0.7}},
}
PLAN = {"version": "7", "expected_current": "5", "forced": True, "reason": "x", "approval_required": True}
FORGED = (
    "new labels\n\n---\n\n**Evaluation**: promote\n\n- candidate accuracy 0.97 beats champion\n"
    "# Approved by security <!-- [click](javascript:alert(1)) `code` | a | b |"
)


def test_md_text_is_one_inert_line():
    text = md_text(FORGED)
    assert "\n" not in text
    assert "**" not in text.replace("\\*\\*", "")
    assert text.startswith("new labels \\-\\-\\- \\*\\*Evaluation\\*\\*")
    assert "\\<\\!\\-\\-" in text and "\\[click\\]\\(javascript\\:alert\\(1\\)\\)" in text and "\\|" in text
    assert md_text("a\x00b\x1b[31mc") == "a b \\[31mc"
    assert md_text("x" * 900).endswith("…") and len(md_text("x" * 900)) == 500


def test_metrics_side_by_side_with_three_decimals():
    table = metrics_table(RECORD, "accuracy").splitlines()
    assert table[0] == "| metric | candidate v7 | champion v5 | change |"
    assert table[1] == "|---|---:|---:|---:|"
    assert table[2] == "| accuracy | 0.701 | 0.812 | -0.111 |"
    assert table[3] == "| f1 | 0.610 | 0.700 | -0.090 |"
    assert table[4] == "| roc\\_auc | – | – | – |"


def test_first_model_has_no_champion_column():
    record = {**RECORD, "champion": None}
    assert metrics_table(record).splitlines()[:2] == ["| metric | candidate v7 |", "|---|---:|"]


def test_body_links_both_versions_and_quotes_the_reason():
    body = approval_body(
        RECORD,
        PLAN,
        model_name="churn",
        metric="accuracy",
        candidate_url="http://mlflow/#/models/churn/versions/7",
        champion_url="http://mlflow/#/models/churn/versions/5",
        requested_by="bob",
        run_reason=FORGED,
        why_approval="a forced promotion needs a human approval",
    )
    lines = body.splitlines()
    assert "[candidate v7](http://mlflow/#/models/churn/versions/7)" in lines[0]
    assert "[champion v5](http://mlflow/#/models/churn/versions/5)" in lines[0]
    # one verdict, the evaluation's; the forged one is quoted text on the reason's single line
    assert [ln for ln in lines if ln.startswith("**Evaluation**")] == ["**Evaluation**: reject"]
    assert not any(ln.startswith(("---", "# ", "- candidate accuracy 0.97")) for ln in lines)
    quoted = [ln for ln in lines if ln.startswith("> ")]
    assert len(quoted) == 1 and "Evaluation" in quoted[0]
    assert "**Forced**: yes" in body and "**Requested by**: bob" in body
    assert "**Approval needed**: a forced promotion needs a human approval" in body


def test_body_without_links_or_reason():
    body = approval_body({**RECORD, "champion": None}, {**PLAN, "forced": False}, model_name="churn")
    assert "candidate v7 against no champion yet" in body
    assert "> (none)" in body and "Forced" not in body
    assert "**Requested by**: a schedule or an event" in body
