"""Promotion and rollback: the moves of an alias, crash-consistent with their history.

A move, under the registry lock (:mod:`.lock`), is four steps:

1. read the registered model once (alias holder and history) and settle any event a crashed
   mover left pending: *done* if the alias holds its version (the alias write happened), else
   *aborted*;
2. decide (idempotency, compare-and-set, rollback target) from the done events;
3. write the event as *pending* (the intent), move the alias, tag the version, rewrite the event
   as *done*;
4. read the alias back.

Whatever call a crash interrupts, the alias and the done history agree again after the next move
of the alias, and a retry of the same task instance finds its own pending or done event, so it
finishes the move it started instead of making a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.registry import record, validate
from airflow_mlops.core.registry.errors import RegistryConflict, RegistryStateError
from airflow_mlops.core.registry.history import (
    ABORTED,
    DONE,
    History,
    HistoryEvent,
    read_history,
    rollback_target,
)
from airflow_mlops.core.registry.lock import LOCK_TTL, RegistryLock, task_identity
from airflow_mlops.core.registry.validate import NO_HOLDER

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

log = logging.getLogger(__name__)


@dataclass
class AliasMove:
    model_name: str
    alias: str
    version: str
    previous_version: str | None
    changed: bool
    event: HistoryEvent | None

    def result(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "version": self.version,
            "previous_version": self.previous_version,
        }


@dataclass
class _Plan:
    """What a mover decided under the lock: a move to make, or the result to return as it is."""

    action: str
    version: str
    previous: str | None
    done: AliasMove | None = None
    repair: bool = False
    """With ``done``: the version lacks the tags of its done event (written now)."""


def is_not_found(err: Exception) -> bool:
    """True when an ``MlflowException`` says the model, version or alias does not exist.

    MLflow answers a missing alias with RESOURCE_DOES_NOT_EXIST on some stores and with
    INVALID_PARAMETER_VALUE ("alias ... not found") on others; a down server is neither.
    """
    code = getattr(err, "error_code", "")
    if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
        return True
    text = str(err).lower()
    return code == "INVALID_PARAMETER_VALUE" and (
        "alias" in text or "not found" in text or "does not exist" in text
    )


def current_holder(client: MlflowClient, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if is_not_found(err):
            return None
        raise


def promote(
    client: MlflowClient,
    name: str,
    version: str | int,
    alias: str = "champion",
    *,
    expected_current: Any = None,
    reason: str | None = None,
    forced: bool = False,
    origin: dict[str, Any] | None = None,
    lock_timeout: float = 120.0,
    lock_ttl: float = LOCK_TTL,
) -> AliasMove:
    """Point ``name@alias`` at ``version`` under the lock, with compare-and-set and history.

    Re-running for a version that already holds the alias changes nothing and returns the same
    result as the run that moved it; so does a retry of the task instance that moved it.

    :param origin: the acting task instance (``dag_id``, ``run_id``, ``task_id``, ``map_index``,
        ``user``); recorded in the history, and the identity a retry is recognised by.
    :raises RegistryInputError: a setting is invalid (nothing was read or written).
    :raises RegistryStateError: the version does not exist; a foreign model holds the lock's name.
    :raises RegistryConflict: the alias is not at ``expected_current``.
    :raises RegistryBusy: the lock stayed taken for ``lock_timeout`` seconds.
    """
    alias = validate.check_alias(alias)
    name = validate.check_model_name(name, alias)
    version = validate.check_version(version)
    expected = validate.normalize_expected(expected_current)
    reason = validate.check_reason(reason)
    origin = _checked(origin, reason, lock_timeout, lock_ttl)
    mv = _get_version(client, name, version)

    def plan(history: History, holder: str | None) -> _Plan:
        ours = history.by_task(origin, "promote")
        if ours is not None and ours.version == version:
            if holder != version:
                log.warning(
                    "This task instance already promoted %s v%s to @%s (history event %s); the alias "
                    "has moved since, to %s: nothing to do (trigger a new run to promote again)",
                    name,
                    version,
                    alias,
                    ours.seq,
                    record.describe(holder),
                )
            return _Plan("promote", version, ours.previous_version, _unchanged(name, ours))
        if holder == version:
            last = history.last_done
            if last is not None and last.version == version:
                previous = last.previous_version
                done = AliasMove(name, alias, version, previous, False, last)
                return _Plan(
                    "promote", version, previous, done, repair=record.lacks_tags(last, dict(mv.tags))
                )
            # the alias was set outside airflow-mlops (or by a mover from before the intent):
            # record what is known, so that rollback has something to walk
            return _Plan("promote", version, last.version if last else None)
        if expected is not None and (holder or NO_HOLDER) != expected:
            raise RegistryConflict(
                f"refusing to move @{alias} of {name} to v{version}: expected it at "
                f"{record.describe(expected)}, but it is at {record.describe(holder)} (it moved since the "
                "decision to promote was made)"
            )
        return _Plan("promote", version, holder)

    return _move(
        client,
        name,
        alias,
        plan,
        origin=origin,
        reason=reason,
        forced=forced,
        lock_timeout=lock_timeout,
        lock_ttl=lock_ttl,
    )


def rollback(
    client: MlflowClient,
    name: str,
    alias: str = "champion",
    *,
    to_version: str | int | None = None,
    reason: str | None = None,
    origin: dict[str, Any] | None = None,
    lock_timeout: float = 120.0,
    lock_ttl: float = LOCK_TTL,
) -> AliasMove:
    """Point ``name@alias`` back at the holder before the current one (or at ``to_version``).

    Re-running the same task instance returns its earlier result instead of walking further back,
    also when its first try crashed half-way. Errors as :func:`promote`, and
    :class:`RegistryStateError` when there is nothing to roll back to.
    """
    alias = validate.check_alias(alias)
    name = validate.check_model_name(name, alias)
    to_version = validate.optional_version(to_version, "to_version")
    reason = validate.check_reason(reason)
    origin = _checked(origin, reason, lock_timeout, lock_ttl)
    if to_version is not None:
        _get_version(client, name, to_version)

    def plan(history: History, holder: str | None) -> _Plan:
        ours = history.by_task(origin, "rollback")
        if ours is not None and to_version in (None, ours.version):
            if holder != ours.version:
                log.warning(
                    "This task instance already rolled @%s of %s back to v%s (history event %s); "
                    "the alias has moved since, to %s: nothing to do",
                    alias,
                    name,
                    ours.version,
                    ours.seq,
                    record.describe(holder),
                )
            return _Plan("rollback", ours.version, ours.previous_version, _unchanged(name, ours))
        if holder is None:
            raise RegistryStateError(f"{name} has no @{alias}: there is nothing to roll back")
        target = to_version or rollback_target(history.done, holder)
        if target == holder:
            return _Plan(
                "rollback", holder, holder, AliasMove(name, alias, holder, holder, False, history.last_done)
            )
        if to_version is None:
            _get_version(client, name, target)  # the history may name a version deleted since
        return _Plan("rollback", target, holder)

    return _move(
        client,
        name,
        alias,
        plan,
        origin=origin,
        reason=reason,
        forced=False,
        lock_timeout=lock_timeout,
        lock_ttl=lock_ttl,
    )


def _checked(origin: Any, reason: str | None, lock_timeout: Any, lock_ttl: Any) -> dict[str, Any]:
    validate.check_seconds(lock_timeout, "lock_timeout")
    validate.check_seconds(lock_ttl, "lock_ttl", positive=True)
    origin = validate.check_origin(origin)
    # the largest event this mover can write must fit in one tag (versions are short)
    probe = record.new_event(
        origin,
        seq=0,
        alias="",
        action="rollback",
        version="9" * 12,
        previous="9" * 12,
        reason=reason,
        forced=True,
    )
    validate.check_event_fits(replace(probe, note="x" * 400).to_json())
    return origin


def _move(
    client: MlflowClient,
    name: str,
    alias: str,
    plan: Callable[[History, str | None], _Plan],
    *,
    origin: dict[str, Any],
    reason: str | None,
    forced: bool,
    lock_timeout: float,
    lock_ttl: float,
) -> AliasMove:
    task = task_identity(origin)
    with RegistryLock(client, name, alias, task=task, ttl=lock_ttl, timeout=lock_timeout) as held:
        model = client.get_registered_model(name)
        holder = _opt_str((model.aliases or {}).get(alias))
        history = read_history(dict(model.tags), alias, model=name)
        own = record.settle(client, held, name, history, holder, origin)
        if own is not None and own.status == DONE:
            # an earlier try of this task instance moved the alias and stopped before recording it
            return AliasMove(name, alias, own.version, own.previous_version, True, own)
        decision = plan(history, holder)
        same = own is not None and (own.action, own.version, own.previous_version) == (
            decision.action,
            decision.version,
            decision.previous,
        )
        if own is not None and (decision.done is not None or not same):
            record.finish(client, held, name, own, ABORTED, "superseded by a later try of the same task")
        if decision.done is not None:
            if decision.repair and decision.done.event is not None:
                log.warning("%s v%s lacks the tags of its promotion: writing them", name, decision.version)
                record.tag_version(client, held, name, decision.done.event)
            return decision.done
        if same:
            event = replace(own, reason=reason, forced=bool(forced))  # resume the interrupted intent
        else:
            event = record.new_event(
                origin,
                seq=history.last_seq + 1,
                alias=alias,
                action=decision.action,
                version=decision.version,
                previous=decision.previous,
                reason=reason,
                forced=forced,
            )
            if holder == decision.version:
                event.note = f"the alias already pointed at v{holder}; recorded after the fact"
        record.write(client, held, name, event)
        if holder != event.version:
            record.set_alias(client, held, name, event)
        event = record.finish(client, held, name, event, DONE)
        after = current_holder(client, name, alias)
    if after != event.version:
        raise RegistryConflict(
            f"@{alias} of {name} was moved to {record.describe(after)} by another writer right after this "
            f"task set it to v{event.version} (history event {event.seq}); check the registry before retrying"
        )
    return AliasMove(name, alias, event.version, event.previous_version, holder != event.version, event)


def _unchanged(name: str, event: HistoryEvent) -> AliasMove:
    return AliasMove(name, event.alias, event.version, event.previous_version, False, event)


def _get_version(client: MlflowClient, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as err:
        if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise  # the server is down or refused: not the same as "no such version"
        raise RegistryStateError(f"model version {name} v{version} does not exist: {err.message}") from err


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
