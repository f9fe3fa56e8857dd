"""PromoteModelOperator / RollbackModelOperator around a patched hook: what they pass to the
registry protocol (the acting task instance, map index included), what they return and push,
and the settings they refuse before any I/O."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_mlops.core.registry import AliasMove, HistoryEvent
from airflow_mlops.exceptions import MlopsError, PromotionConflict, RegistryError
from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator


class _Events(dict):
    def __missing__(self, key):
        self[key] = SimpleNamespace(extra={})
        return self[key]


def _context(map_index: int = -1) -> dict:
    ti = mock.MagicMock(dag_id="d", run_id="r1", task_id="promote", map_index=map_index)
    return {"ti": ti, "dag_run": SimpleNamespace(triggering_user_name="alice"), "outlet_events": _Events()}


def _move(version="3", previous="2", changed=True) -> AliasMove:
    event = HistoryEvent(1, "promote", "champion", version, previous, "t")
    return AliasMove("churn", "champion", version, previous, changed, event)


@pytest.fixture
def hook():
    with mock.patch("airflow_mlops.operators.registry.MlflowHook", autospec=True) as cls:
        instance = cls.return_value
        instance.model_version_url.return_value = "http://mlflow/#/models/churn/versions/3"
        yield instance


def test_promote_passes_the_task_instance_and_returns_the_move(hook):
    hook.promote.return_value = _move()
    op = PromoteModelOperator(
        task_id="promote", model_name="churn", version=" 3 ", expected_current="2", reason="why"
    )
    context = _context(map_index=4)
    assert op.execute(context) == {
        "model_name": "churn",
        "alias": "champion",
        "version": "3",
        "previous_version": "2",
    }
    hook.promote.assert_called_once_with(
        "churn",
        "3",
        alias="champion",
        expected_current="2",
        reason="why",
        forced=False,
        origin={
            "dag_id": "d",
            "run_id": "r1",
            "task_id": "promote",
            "user": "alice",
            "map_index": 4,
            "approved_by": None,
        },
        lock_timeout=120.0,
    )
    (event,) = context["outlet_events"].values()
    assert event.extra == {
        "model_name": "churn",
        "alias": "champion",
        "version": "3",
        "previous_version": "2",
        "action": "promote",
        "changed": True,
        "reason": "why",
    }
    context["ti"].xcom_push.assert_called_once()  # the model version link


def test_rollback_passes_its_target_and_the_task_instance(hook):
    hook.rollback.return_value = _move(version="1", previous="2")
    op = RollbackModelOperator(task_id="rollback", model_name="churn", to_version="", lock_timeout=5)
    assert op.execute(_context())["version"] == "1"
    kwargs = hook.rollback.call_args.kwargs
    assert kwargs["to_version"] == "" and kwargs["lock_timeout"] == 5
    assert kwargs["origin"]["map_index"] == -1


@pytest.mark.parametrize(
    "error", [PromotionConflict("moved"), RegistryError("version: 'x'"), MlopsError("down")]
)
def test_the_hooks_errors_fail_the_task_as_they_are(hook, error):
    hook.promote.side_effect = error
    op = PromoteModelOperator(task_id="promote", model_name="churn", version="3")
    context = _context()
    with pytest.raises(type(error)):
        op.execute(context)
    assert not context["outlet_events"]  # no asset event for a move that did not happen


@pytest.mark.parametrize("version", ["", "None", "none", None])
def test_promote_without_a_version_fails_before_the_registry(hook, version):
    op = PromoteModelOperator(task_id="promote", model_name="churn", version=version)
    with pytest.raises(RegistryError, match="no version to promote for churn"):
        op.execute(_context())
    hook.promote.assert_not_called()


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1, "60", True])
def test_lock_timeout_is_checked_at_parse_time(timeout):
    with pytest.raises(ValueError, match="lock_timeout must be a finite number of seconds"):
        PromoteModelOperator(task_id="promote", model_name="churn", version="3", lock_timeout=timeout)


def test_forced_is_read_from_its_rendered_text(hook):
    hook.promote.return_value = _move()
    PromoteModelOperator(
        task_id="p", model_name="churn", version="3", forced="True", approved_by="carol"
    ).execute(_context())
    assert hook.promote.call_args.kwargs["forced"] is True  # a forced move needs an approver (tests/security)
