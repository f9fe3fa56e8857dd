from __future__ import annotations

import json

import pytest

from airflow_mlops.core.registry import (
    NO_HOLDER,
    RegistryStateError,
    normalize_expected,
    parse_history,
    rollback_target,
)


def _tags(*events):
    return {f"mlops.history.champion.{i:06d}": json.dumps(e) for i, e in enumerate(events, start=1)} | {
        "unrelated": "x",
        "mlops.history.champion.junk": "{",
    }


def test_history_is_ordered_and_ignores_other_tags():
    history = parse_history(
        _tags(
            {"action": "promote", "version": "1", "previous_version": None},
            {"action": "promote", "version": 2, "previous_version": 1},
        ),
        "champion",
    )
    assert [(e.seq, e.version, e.previous_version) for e in history] == [(1, "1", None), (2, "2", "1")]
    assert parse_history(_tags({"action": "promote", "version": "1"}), "challenger") == []


def test_rollback_walks_promotions_not_rollbacks():
    history = parse_history(
        _tags(
            {"action": "promote", "version": "1", "previous_version": None},
            {"action": "promote", "version": "2", "previous_version": "1"},
            {"action": "promote", "version": "3", "previous_version": "2"},
            {"action": "rollback", "version": "2", "previous_version": "3"},
        ),
        "champion",
    )
    assert rollback_target(history, "3") == "2"
    # after rolling back to v2, the next step goes to what v2 replaced, not back to v3
    assert rollback_target(history, "2") == "1"
    with pytest.raises(RegistryStateError, match="v1 was the first holder"):
        rollback_target(history, "1")
    with pytest.raises(RegistryStateError, match="no promotion of v7"):
        rollback_target(history, "7")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("none", NO_HOLDER), ("None", NO_HOLDER), ("", NO_HOLDER), (3, "3"), (" 4 ", "4")],
)
def test_expected_current_forms(given, expected):
    assert normalize_expected(given) == expected
