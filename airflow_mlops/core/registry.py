"""Moving an MLflow alias safely, with a history that rollback can walk.

No Airflow import: the functions take an ``MlflowClient``. MLflow aliases are last-writer-wins,
so every move here happens under a registry-wide lock made from MLflow's own atomic primitive
(creating a registered model whose name is unique), after a compare-and-set check, and is
verified again after the write. The history lives on the registered model as one tag per event
(``mlops.history.<alias>.<seq>``), so it is readable in the MLflow UI and survives Airflow.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlflow import MlflowClient

NO_HOLDER = "none"
LOCK_SUFFIX = ".mlops-lock"


class RegistryConflict(RuntimeError):
    """The alias moved under us, or the lock could not be taken in time."""


class RegistryStateError(ValueError):
    """The registry does not hold what the request refers to (no version, no history ...)."""


@dataclass
class HistoryEvent:
    seq: int
    action: str  # "promote" | "rollback"
    alias: str
    version: str
    previous_version: str | None
    at: str
    reason: str | None = None
    forced: bool = False
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    user: str | None = None
    approved_by: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("seq")
        data.pop("alias")
        return json.dumps(data, sort_keys=True)

    def same_task(self, origin: dict[str, Any]) -> bool:
        """True when this event was written by the task instance described by ``origin``."""
        return bool(origin.get("run_id")) and (self.dag_id, self.run_id, self.task_id) == (
            origin.get("dag_id"),
            origin.get("run_id"),
            origin.get("task_id"),
        )


def parse_history(model_tags: dict[str, str], alias: str) -> list[HistoryEvent]:
    """Events of ``alias`` from a registered model's tags, oldest first."""
    prefix = f"{tags.HISTORY_PREFIX}{alias}."
    events = []
    for key, value in model_tags.items():
        if not key.startswith(prefix):
            continue
        suffix = key[len(prefix) :]
        if not suffix.isdigit():
            continue
        try:
            data = json.loads(value)
        except ValueError:
            continue
        events.append(
            HistoryEvent(
                seq=int(suffix),
                alias=alias,
                action=data.get("action", "promote"),
                version=str(data["version"]),
                previous_version=_opt_str(data.get("previous_version")),
                at=data.get("at", ""),
                reason=data.get("reason"),
                forced=bool(data.get("forced", False)),
                dag_id=data.get("dag_id"),
                run_id=data.get("run_id"),
                task_id=data.get("task_id"),
                user=data.get("user"),
                approved_by=data.get("approved_by"),
            )
        )
    return sorted(events, key=lambda e: e.seq)


def rollback_target(history: list[HistoryEvent], current: str) -> str:
    """The version that held the alias before ``current`` was promoted to it.

    Rollback events are skipped on purpose: after rolling back from v3 to v2, the next rollback
    goes to whatever v2 replaced when v2 was promoted, not back to v3.
    """
    for event in reversed(history):
        if event.action == "promote" and event.version == current:
            if event.previous_version is None:
                raise RegistryStateError(
                    f"v{current} was the first holder of @{event.alias} (promoted {event.at}); "
                    "there is no earlier version to roll back to"
                )
            return event.previous_version
    raise RegistryStateError(
        f"no promotion of v{current} to this alias is recorded in the history; "
        "pass to_version to choose the version explicitly"
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def normalize_expected(expected: Any) -> str | None:
    """The expected holder of the alias for the compare-and-set: a version string, ``"none"``
    for "must have no holder yet" (also from "", "null"), or None for "do not check"."""
    if expected is None:
        return None
    text = str(expected).strip()
    if text == "" or text.lower() in ("none", "null"):
        return NO_HOLDER
    return text


def current_holder(client: MlflowClient, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if is_not_found(err):
            return None
        raise


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


@contextmanager
def registry_lock(
    client: MlflowClient,
    name: str,
    alias: str,
    *,
    owner: str,
    ttl: float = 300.0,
    timeout: float = 120.0,
) -> Iterator[None]:
    """Hold an exclusive lock on ``name@alias`` across processes and machines.

    The lock is a registered model ``<name>.mlops-lock.<alias>``: MLflow refuses to create a
    second model of the same name atomically (a unique key in its store), which is the
    compare-and-set primitive aliases lack. A lock older than ``ttl`` seconds is stale (its
    holder crashed) and is broken.
    """
    from mlflow.exceptions import MlflowException

    lock_name = f"{name}{LOCK_SUFFIX}.{alias}"
    token = f"{owner}#{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.create_registered_model(
                lock_name,
                tags={tags.LOCK_OWNER: token, tags.LOCK_EXPIRES: str(time.time() + ttl)},
                description=f"airflow-mlops lock for {name}@{alias}; held by {owner}. "
                "Safe to delete if no promotion is running.",
            )
            break
        except MlflowException as err:
            # RESOURCE_DOES_NOT_EXIST is contention too: MLflow's SQL store answers a unique-key
            # clash by reading the existing model for its message, and the holder may release
            # (delete) it in between (seen in the eight-way race test).
            if getattr(err, "error_code", "") not in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
                raise
        _break_if_stale(client, lock_name)
        if time.monotonic() > deadline:
            raise RegistryConflict(
                f"could not lock {name}@{alias} within {timeout:.0f}s: another promotion holds "
                f"the registry lock {lock_name!r}"
            )
        time.sleep(random.uniform(0.05, 0.3))
    try:
        yield
    finally:
        try:
            held = client.get_registered_model(lock_name)
            if held.tags.get(tags.LOCK_OWNER) == token:
                client.delete_registered_model(lock_name)
        except MlflowException:
            pass  # already broken as stale by someone else; nothing of ours to release


def _break_if_stale(client: MlflowClient, lock_name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        held = client.get_registered_model(lock_name)
        expires = float(held.tags.get(tags.LOCK_EXPIRES, "0") or 0)
        if expires and expires < time.time():
            again = client.get_registered_model(lock_name)
            if again.tags.get(tags.LOCK_OWNER) == held.tags.get(tags.LOCK_OWNER):
                client.delete_registered_model(lock_name)
    except MlflowException:
        pass  # released between our create and our read


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record(
    client: MlflowClient,
    name: str,
    alias: str,
    history: list[HistoryEvent],
    *,
    action: str,
    version: str,
    previous: str | None,
    reason: str | None,
    forced: bool,
    origin: dict[str, Any],
) -> HistoryEvent:
    event = HistoryEvent(
        seq=(history[-1].seq + 1) if history else 1,
        action=action,
        alias=alias,
        version=version,
        previous_version=previous,
        at=_now(),
        reason=reason,
        forced=forced,
        dag_id=origin.get("dag_id"),
        run_id=origin.get("run_id"),
        task_id=origin.get("task_id"),
        user=origin.get("user"),
        approved_by=origin.get("approved_by"),
    )
    client.set_registered_model_tag(name, tags.history_key(alias, event.seq), event.to_json())
    by = "/".join(str(origin.get(k) or "-") for k in ("dag_id", "run_id", "task_id"))
    version_tags = {
        tags.PROMOTED_PREVIOUS: previous or NO_HOLDER,
        tags.PROMOTED_AT: event.at,
        tags.PROMOTED_REASON: reason or "",
        tags.PROMOTED_BY: by,
        tags.PROMOTED_FORCED: str(forced).lower(),
    }
    if action == "rollback":
        version_tags = {
            tags.ROLLBACK_AT: event.at,
            tags.ROLLBACK_FROM: previous or NO_HOLDER,
            tags.ROLLBACK_REASON: reason or "",
            tags.ROLLBACK_BY: by,
        }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key.format(alias=alias), value)
    return event


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


def _check_version(client: MlflowClient, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as err:
        if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise  # the server is down or refused: not the same as "no such version"
        raise RegistryStateError(f"model version {name} v{version} does not exist: {err.message}") from err


def _verify(client: MlflowClient, name: str, alias: str, version: str, event: HistoryEvent) -> None:
    after = current_holder(client, name, alias)
    if after != version:
        raise RegistryConflict(
            f"@{alias} of {name} was moved to v{after} by another writer right after this task set "
            f"it to v{version} (history event {event.seq}); check the registry before retrying"
        )


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
) -> AliasMove:
    """Point ``name@alias`` at ``version`` under the lock, with compare-and-set and history.

    Re-running for a version that already holds the alias changes nothing and returns the same
    result as the run that moved it.
    """
    version = str(version)
    origin = origin or {}
    expected = normalize_expected(expected_current)
    _check_version(client, name, version)
    with registry_lock(client, name, alias, owner=_owner(origin), timeout=lock_timeout):
        current = current_holder(client, name, alias)
        history = parse_history(client.get_registered_model(name).tags, alias)
        if current == version:
            last = history[-1] if history else None
            previous = last.previous_version if last and last.version == version else None
            return AliasMove(name, alias, version, previous, changed=False, event=last)
        if expected is not None and (current or NO_HOLDER) != expected:
            raise RegistryConflict(
                f"refusing to move @{alias} of {name} to v{version}: expected it at "
                f"{_describe(expected)}, but it is at {_describe(current)} (it moved since the "
                "decision to promote was made)"
            )
        client.set_registered_model_alias(name, alias, version)
        event = _record(
            client,
            name,
            alias,
            history,
            action="promote",
            version=version,
            previous=current,
            reason=reason,
            forced=forced,
            origin=origin,
        )
        _verify(client, name, alias, version, event)
    return AliasMove(name, alias, version, current, changed=True, event=event)


def rollback(
    client: MlflowClient,
    name: str,
    alias: str = "champion",
    *,
    to_version: str | int | None = None,
    reason: str | None = None,
    origin: dict[str, Any] | None = None,
    lock_timeout: float = 120.0,
) -> AliasMove:
    """Point ``name@alias`` back at the holder before the current one (or at ``to_version``).

    Re-running the same task instance returns its earlier result instead of walking further back.
    """
    origin = origin or {}
    if to_version is not None and str(to_version).strip() not in ("", "None", "none"):
        to_version = str(to_version).strip()
        _check_version(client, name, to_version)
    else:
        to_version = None
    with registry_lock(client, name, alias, owner=_owner(origin), timeout=lock_timeout):
        current = current_holder(client, name, alias)
        history = parse_history(client.get_registered_model(name).tags, alias)
        last = history[-1] if history else None
        if last and last.action == "rollback" and last.same_task(origin) and last.version == current:
            return AliasMove(name, alias, last.version, last.previous_version, changed=False, event=last)
        if current is None:
            raise RegistryStateError(f"{name} has no @{alias}: there is nothing to roll back")
        target = to_version or rollback_target(history, current)
        if target == current:
            return AliasMove(name, alias, current, current, changed=False, event=last)
        client.set_registered_model_alias(name, alias, target)
        event = _record(
            client,
            name,
            alias,
            history,
            action="rollback",
            version=target,
            previous=current,
            reason=reason,
            forced=False,
            origin=origin,
        )
        _verify(client, name, alias, target, event)
    return AliasMove(name, alias, target, current, changed=True, event=event)


def _owner(origin: dict[str, Any]) -> str:
    parts = [str(origin.get(k)) for k in ("dag_id", "run_id", "task_id") if origin.get(k)]
    return "/".join(parts) or "manual"


def _describe(version: str | None) -> str:
    return "no holder" if version in (None, NO_HOLDER) else f"v{version}"
