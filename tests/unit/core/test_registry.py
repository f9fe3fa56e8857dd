from __future__ import annotations

import json

import pytest

from airflow_mlops.core.registry import (
    NO_HOLDER,
    HistoryEvent,
    RegistryInputError,
    RegistryStateError,
    normalize_expected,
    parse_history,
    read_history,
    rollback_target,
    task_identity,
    validate,
)


def _tags(*events):
    return {f"mlops.history.champion.{i:06d}": json.dumps(e) for i, e in enumerate(events, start=1)} | {
        "unrelated": "x",
        "mlops.history.challenger.000001": json.dumps({"version": "9"}),
    }


def test_history_is_ordered_and_ignores_other_aliases():
    history = parse_history(
        _tags(
            {"action": "promote", "version": "1", "previous_version": None},
            {"action": "promote", "version": 2, "previous_version": 1},
        ),
        "champion",
    )
    assert [(e.seq, e.version, e.previous_version) for e in history] == [(1, "1", None), (2, "2", "1")]
    assert [e.version for e in parse_history(_tags({"action": "promote", "version": "1"}), "challenger")] == [
        "9"
    ]


def test_rollback_walks_done_promotions_not_rollbacks_nor_unfinished_moves():
    history = read_history(
        _tags(
            {"action": "promote", "version": "1", "previous_version": None},
            {"action": "promote", "version": "2", "previous_version": "1"},
            {"action": "promote", "version": "3", "previous_version": "2"},
            {"action": "rollback", "version": "2", "previous_version": "3"},
            {"action": "promote", "version": "2", "previous_version": "7", "status": "aborted"},
            {"action": "promote", "version": "2", "previous_version": "8", "status": "pending"},
        ),
        "champion",
    )
    assert [e.status for e in history.events] == ["done"] * 4 + ["aborted", "pending"]
    done = history.done
    assert rollback_target(done, "3") == "2"
    # after rolling back to v2, the next step goes to what v2 replaced, not back to v3
    assert rollback_target(done, "2") == "1"
    with pytest.raises(RegistryStateError, match="v1 was the first holder"):
        rollback_target(done, "1")
    with pytest.raises(RegistryStateError, match="no promotion of v7"):
        rollback_target(done, "7")
    assert history.last_done.action == "rollback" and [e.seq for e in history.pending] == [6]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("{", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ("7", "a JSON int, not an object"),
        (json.dumps({"action": "promote"}), "no 'version'"),
        (json.dumps({"version": "abc"}), "version 'abc' is not a version number"),
        (json.dumps({"version": "2", "previous_version": "x"}), "previous_version 'x' is not"),
        (json.dumps({"version": "2", "action": "deploy"}), "action 'deploy' is not one of"),
        (json.dumps({"version": "2", "status": "maybe"}), "status 'maybe' is not one of"),
    ],
)
def test_unreadable_events_are_reported_by_key_and_their_number_kept(value, why, caplog):
    model_tags = _tags({"action": "promote", "version": "1"}) | {"mlops.history.champion.000005": value}
    history = read_history(model_tags, "champion", model="churn")
    assert [e.version for e in history.events] == ["1"]
    assert history.skipped == [("mlops.history.champion.000005", why)] or history.skipped[0][1].startswith(
        why
    )
    assert history.last_seq == 5  # the next event is 6: the unreadable tag is never overwritten
    assert "mlops.history.champion.000005 of churn is not an airflow-mlops event" in caplog.text


def test_a_key_without_a_sequence_number_is_reported():
    history = read_history({"mlops.history.champion.notes": "free text"}, "champion")
    assert history.events == [] and history.last_seq == 0
    assert history.skipped == [
        ("mlops.history.champion.notes", "the part after the alias is not a sequence number")
    ]


def test_event_json_round_trips_and_names_its_task():
    event = HistoryEvent(
        seq=4,
        action="rollback",
        alias="champion",
        version="2",
        previous_version="3",
        at="2026-01-01T00:00:00+00:00",
        reason="r",
        dag_id="d",
        run_id="r1",
        task_id="t",
        map_index=2,
        status="pending",
    )
    (parsed,) = read_history({"mlops.history.champion.000004": event.to_json()}, "champion").events
    assert parsed == event
    assert parsed.same_task({"dag_id": "d", "run_id": "r1", "task_id": "t", "map_index": 2})
    assert not parsed.same_task({"dag_id": "d", "run_id": "r1", "task_id": "t"})  # another map index
    assert not parsed.same_task({"dag_id": "d", "task_id": "t", "map_index": 2})  # no run: nobody
    assert parsed.by() == "d/r1/t[2]"
    assert "map_index" not in json.loads(HistoryEvent(1, "promote", "a", "1", None, "").to_json())


def test_task_identity():
    assert task_identity({"dag_id": "d", "run_id": "r", "task_id": "t"}) == "d/r/t"
    assert task_identity({"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1}) == "d/r/t"
    assert task_identity({"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": 3}) == "d/r/t/3"
    assert task_identity({"task_id": "w1"}) is None  # outside a task run: never takes a lock over


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("none", NO_HOLDER),
        ("None", NO_HOLDER),
        ("", NO_HOLDER),
        (3, "3"),
        (" 4 ", "4"),
        ("05", "5"),
    ],
)
def test_expected_current_forms(given, expected):
    assert normalize_expected(given) == expected


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (validate.check_version, "abc", "version: 'abc' is not a model version number"),
        (validate.check_version, "0", "version: '0'"),
        (validate.check_version, "-1", "version: '-1'"),
        (validate.check_version, "1.5", "version: '1.5'"),
        (validate.check_version, True, "version: True"),
        (validate.check_version, None, "version: None"),
        (validate.check_alias, "a/b", "alias: 'a/b' is not an alias MLflow accepts"),
        (validate.check_alias, "", "alias: ''"),
        (validate.check_alias, "a.b", "alias: 'a.b'"),
        (validate.check_alias, "Latest", "alias: 'Latest' is reserved"),
        (validate.check_alias, "v3", "alias: 'v3' is reserved"),
        (validate.check_alias, "a" * (validate.ALIAS_MAX + 1), f"at most {validate.ALIAS_MAX} fit"),
        (validate.check_reason, "x" * (validate.REASON_MAX + 1), "reason: 10,001 characters"),
        (lambda v: validate.check_seconds(v, "lock_timeout"), float("inf"), "lock_timeout: inf"),
        (lambda v: validate.check_seconds(v, "lock_timeout"), -1, "lock_timeout: -1"),
        (lambda v: validate.check_seconds(v, "lock_ttl", positive=True), 0, "lock_ttl: 0 must be"),
        (lambda v: validate.check_model_name(v, "champion"), "", "model_name: empty"),
        (lambda v: validate.check_model_name(v, "champion"), "a/b", "model_name: 'a/b' contains"),
        (lambda v: validate.check_model_name(v, "champion"), "n" * 240, "too long for the registry lock"),
        (validate.check_origin, {"run_id": "r", "map_index": "1"}, "origin: map_index must be an integer"),
        (validate.check_origin, {"run_id": object()}, "origin: not JSON-serialisable"),
        (lambda v: validate.optional_version(v, "to_version"), "v2", "to_version: 'v2'"),
    ],
)
def test_settings_are_refused_naming_the_setting(check, value, message):
    with pytest.raises(RegistryInputError) as err:
        check(value)
    assert message in str(err.value)
    assert isinstance(err.value, RegistryStateError)  # the hook maps it to RegistryError: no retry


def test_accepted_settings_are_normalised():
    assert validate.check_version(" 03 ") == "3" and validate.check_version(7) == "7"
    assert validate.optional_version("", "to_version") is None
    assert validate.optional_version("None", "to_version") is None
    assert (
        validate.check_alias(" champion ") == "champion" and validate.check_alias("ünïcode_1") == "ünïcode_1"
    )
    assert validate.check_reason(None) is None and validate.check_reason(42) == "42"
    assert validate.check_model_name("x'y\"z ü", "champion") == "x'y\"z ü"
    # the longest alias still fits in every tag key MLflow limits to 250 characters
    assert len(f"mlops.promotion.{'a' * validate.ALIAS_MAX}.previous_version") <= 250


def test_an_event_that_cannot_fit_in_a_tag_is_refused():
    validate.check_event_fits("x" * validate.TAG_VALUE_MAX)
    with pytest.raises(RegistryInputError, match="over MLflow's tag limit"):
        validate.check_event_fits("x" * (validate.TAG_VALUE_MAX + 1))


class _LockModels:
    """The far side of the registry for the lock's reads: the models it answers, in turn."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def get_registered_model(self, name):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        answer = self.answers.pop(0)
        if answer is None:
            raise MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST)
        return answer


def _model(created: int, **model_tags):
    from types import SimpleNamespace

    return SimpleNamespace(tags=model_tags, creation_timestamp=created)


@pytest.mark.parametrize(
    ("answers", "gone"),
    [
        ((None,), True),  # released between the clash and the read
        ((_model(1), None), True),  # a lock read while being deleted: its tags were already gone
        ((_model(1), _model(2, **{"mlops.lock.owner": "x#1"})), False),  # and a new lock took its place
        ((_model(1), _model(2)), False),  # not the same model twice: not proven foreign
    ],
)
def test_a_lock_without_owner_read_once_is_contention_not_a_foreign_model(answers, gone):
    from airflow_mlops.core.registry import RegistryLock

    lock = RegistryLock(_LockModels(*answers), "churn", "champion", task=None)
    assert lock._clear_dead({}) is gone


def test_a_model_without_owner_read_twice_is_refused():
    from airflow_mlops.core.registry import RegistryLock

    lock = RegistryLock(_LockModels(_model(1), _model(1)), "churn", "champion", task=None)
    with pytest.raises(
        RegistryStateError, match="'churn.mlops-lock.champion' exists but is not an airflow-mlops lock"
    ):
        lock._clear_dead({})
