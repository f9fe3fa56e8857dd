"""Writing a move down: the history event's life (pending, then done or aborted), the version's
tags, and settling what a crashed mover left pending. Called by :mod:`.moves` under the lock;
every write checks the lease first (:meth:`RegistryLock.check`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags
from airflow_mlops.core.registry.history import (
    ABORTED,
    DONE,
    PENDING,
    ROLLOUT_ACTIONS,
    History,
    HistoryEvent,
)
from airflow_mlops.core.registry.lock import RegistryLock, task_identity
from airflow_mlops.core.registry.validate import NO_HOLDER

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
# MLflow refuses these for the request itself: a write answered so did not happen
_REFUSED = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def settle(
    client: MlflowClient,
    held: RegistryLock,
    name: str,
    history: History,
    holder: str | None,
    origin: dict[str, Any],
) -> HistoryEvent | None:
    """Finish or abort every pending event; return this task instance's own pending event, which
    its caller finishes (or aborts) itself."""
    own = None
    last = history.events[-1] if history.events else None
    for event in history.pending:
        moved = event is last and holder == event.version
        if event is last and event.same_task(origin):
            own = event
            if moved:
                log.warning(
                    "Resuming the move of @%s of %s to v%s that an earlier try of this task started "
                    "(history event %s): the alias moved, the record is completed now",
                    event.alias,
                    name,
                    event.version,
                    event.seq,
                )
                own = finish(client, held, name, event, DONE, "completed by a later try of the same task")
                history.events[history.events.index(event)] = own
            continue
        status = DONE if moved else ABORTED
        note = (
            f"completed by {task_identity(origin) or 'a later move'}: its mover stopped after moving the alias"
            if moved
            else f"aborted by {task_identity(origin) or 'a later move'}: its mover stopped before moving "
            f"the alias (which is at {describe(holder)})"
        )
        log.warning(
            "History event %s of %s (%s of @%s to v%s by %s) was left pending by a mover that stopped: %s",
            event.seq,
            name,
            event.action,
            event.alias,
            event.version,
            event.by(),
            "the alias moved, so it is marked done"
            if moved
            else "the alias did not move, so it is marked aborted",
        )
        history.events[history.events.index(event)] = finish(client, held, name, event, status, note)
    return own


def finish(
    client: MlflowClient,
    held: RegistryLock,
    name: str,
    event: HistoryEvent,
    status: str,
    note: str | None = None,
) -> HistoryEvent:
    """Mark ``event`` done (after tagging its version) or aborted."""
    event = replace(event, status=status, note=note or event.note)
    if status == DONE:
        tag_version(client, held, name, event)
    write(client, held, name, event)
    return event


def write(client: MlflowClient, held: RegistryLock, name: str, event: HistoryEvent) -> None:
    held.check()
    client.set_registered_model_tag(name, tags.history_key(event.alias, event.seq), event.to_json())


def set_alias(client: MlflowClient, held: RegistryLock, name: str, event: HistoryEvent) -> None:
    from mlflow.exceptions import MlflowException

    held.check()
    try:
        client.set_registered_model_alias(name, event.alias, event.version)
    except MlflowException as err:
        if getattr(err, "error_code", "") in _REFUSED:  # refused, so not applied: say so now
            finish(client, held, name, event, ABORTED, f"the registry refused the alias write: {err.message}")
        raise


def version_tags(event: HistoryEvent) -> dict[str, str]:
    by = event.by()
    if event.action in ROLLOUT_ACTIONS:
        return {
            tags.CANARY_ACTION: event.action,
            tags.CANARY_SHARE: f"{event.share:g}",
            tags.CANARY_CONTROL: event.control or NO_HOLDER,
            tags.CANARY_REASON: event.reason or "",
            tags.CANARY_BY: by,
            tags.CANARY_AT: event.at,  # last: its presence says the others were written
        }
    if event.action == "rollback":
        return {
            tags.ROLLBACK_AT: event.at,
            tags.ROLLBACK_FROM: event.previous_version or NO_HOLDER,
            tags.ROLLBACK_REASON: event.reason or "",
            tags.ROLLBACK_BY: by,
        }
    return {
        tags.PROMOTED_PREVIOUS: event.previous_version or NO_HOLDER,
        tags.PROMOTED_AT: event.at,
        tags.PROMOTED_REASON: event.reason or "",
        tags.PROMOTED_BY: by,
        tags.PROMOTED_FORCED: str(event.forced).lower(),
    }


def tag_version(client: MlflowClient, held: RegistryLock, name: str, event: HistoryEvent) -> None:
    for key, value in version_tags(event).items():
        held.check()
        client.set_model_version_tag(name, event.version, key.format(alias=event.alias), value)


def lacks_tags(event: HistoryEvent, version_tags: dict[str, str]) -> bool:
    """True when the version of a done event lacks its tags (a crash before the intent existed)."""
    key = {"rollback": tags.ROLLBACK_AT, "promote": tags.PROMOTED_AT}.get(event.action, tags.CANARY_AT)
    return version_tags.get(key.format(alias=event.alias)) != event.at


def new_event(
    origin: dict[str, Any],
    *,
    seq: int,
    alias: str,
    action: str,
    version: str,
    previous: str | None,
    reason: str | None,
    forced: bool,
    **rollout: Any,
) -> HistoryEvent:
    """A pending event of ``origin``; ``rollout``: ``share``, ``control``, ``plan`` of a rollout event."""
    index = origin.get("map_index")
    return HistoryEvent(
        seq=seq,
        action=action,
        alias=alias,
        version=version,
        previous_version=previous,
        at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        reason=reason,
        forced=bool(forced),
        dag_id=_opt_str(origin.get("dag_id")),
        run_id=_opt_str(origin.get("run_id")),
        task_id=_opt_str(origin.get("task_id")),
        user=_opt_str(origin.get("user")),
        approved_by=_opt_str(origin.get("approved_by")) or None,
        map_index=int(index) if index is not None and int(index) >= 0 else None,
        status=PENDING,
        **rollout,
    )


def describe(version: str | None) -> str:
    return "no holder" if version in (None, NO_HOLDER) else f"v{version}"


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
