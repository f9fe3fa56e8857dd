"""The alias history: one tag per move on the registered model, readable without Airflow.

``mlops.history.<alias>.<seq:06d>`` holds a JSON event. A move writes its event first as
``"status": "pending"`` (the write-ahead intent: what is about to happen and who does it), then
moves the alias, then rewrites the same tag as ``"done"``; the next mover turns a pending event
left by a crash into ``"done"`` (the alias did move) or ``"aborted"`` (it did not). Only done
events are the history: rollback walks them, and the last one names the holder of the alias.
Events written before the intent existed have no status and count as done.

A canary rollout writes its events the same way under the canary alias
(:mod:`.rollout`): ``canary_start``, ``canary_step``, ``canary_complete`` and ``canary_abort``,
with the canary's ``share`` of traffic after the event and the ``control`` version serving the
rest (the start event also holds the rollout's ``plan``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_mlops.core import tags
from airflow_mlops.core.registry.errors import RegistryStateError

log = logging.getLogger(__name__)

PENDING, DONE, ABORTED = "pending", "done", "aborted"
STATUSES = (PENDING, DONE, ABORTED)
CANARY_START, CANARY_STEP, CANARY_COMPLETE, CANARY_ABORT = (
    "canary_start",
    "canary_step",
    "canary_complete",
    "canary_abort",
)
ROLLOUT_ACTIONS = (CANARY_START, CANARY_STEP, CANARY_COMPLETE, CANARY_ABORT)
ACTIONS = ("promote", "rollback", *ROLLOUT_ACTIONS)


@dataclass
class HistoryEvent:
    seq: int
    action: str  # "promote" | "rollback" | one of ROLLOUT_ACTIONS
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
    """Who approved the move (the responder of a Human-in-the-loop approval), when one did."""
    map_index: int | None = None
    status: str = DONE
    note: str | None = None
    """Set when a mover other than the writer finished or aborted this event, saying why."""
    share: float | None = None
    """Rollout events: the canary's percent of traffic after the event (0 after an abort, 100
    after the completion)."""
    control: str | None = None
    """Rollout events: the version serving the traffic the canary does not (the champion)."""
    plan: dict[str, Any] | None = None
    """The start event of a rollout: its plan (steps, bake times, analysis settings)."""

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("seq", "alias"):
            data.pop(key)
        for key in ("approved_by", "map_index", "note", "share", "control", "plan"):
            if data[key] is None:
                data.pop(key)
        return json.dumps(data, sort_keys=True)

    def same_task(self, origin: dict[str, Any]) -> bool:
        """True when this event was written by the task instance described by ``origin``."""
        return bool(origin.get("run_id")) and (
            self.dag_id,
            self.run_id,
            self.task_id,
            _map_index(self.map_index),
        ) == (
            origin.get("dag_id"),
            origin.get("run_id"),
            origin.get("task_id"),
            _map_index(origin.get("map_index")),
        )

    def by(self) -> str:
        """``dag_id/run_id/task_id`` (``[map_index]`` for a mapped task), or ``-`` parts."""
        who = "/".join(str(v or "-") for v in (self.dag_id, self.run_id, self.task_id))
        return who + (f"[{self.map_index}]" if _map_index(self.map_index) >= 0 else "")


def _map_index(value: Any) -> int:
    try:
        return int(value) if value is not None else -1
    except (TypeError, ValueError):
        return -1


@dataclass
class History:
    """Every event of one alias, oldest first, and the tags that are not events."""

    alias: str
    events: list[HistoryEvent] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(tag key, why)`` of tags under the alias's prefix that are not readable events."""
    last_seq: int = 0
    """Highest sequence number in use, unreadable tags included (never overwritten)."""

    @property
    def done(self) -> list[HistoryEvent]:
        return [e for e in self.events if e.status == DONE]

    @property
    def pending(self) -> list[HistoryEvent]:
        return [e for e in self.events if e.status == PENDING]

    @property
    def last_done(self) -> HistoryEvent | None:
        done = self.done
        return done[-1] if done else None

    def by_task(self, origin: dict[str, Any], action: str) -> HistoryEvent | None:
        """The latest done ``action`` of the task instance ``origin``, if any."""
        for event in reversed(self.done):
            if event.action == action and event.same_task(origin):
                return event
        return None


def read_history(model_tags: dict[str, str], alias: str, *, model: str = "") -> History:
    """Events of ``alias`` from a registered model's tags. A tag under the alias's prefix that is
    not an event (not JSON, not an object, no version ...) is logged by key and skipped, and its
    sequence number is never reused, so the evidence stays."""
    prefix = f"{tags.HISTORY_PREFIX}{alias}."
    history = History(alias=alias)
    for key, value in model_tags.items():
        if not key.startswith(prefix):
            continue
        suffix = key[len(prefix) :]
        if not suffix.isdigit():
            history.skipped.append((key, "the part after the alias is not a sequence number"))
            continue
        seq = int(suffix)
        history.last_seq = max(history.last_seq, seq)
        try:
            history.events.append(_event(seq, alias, value))
        except ValueError as err:
            history.skipped.append((key, str(err)))
    history.events.sort(key=lambda e: e.seq)
    for key, why in history.skipped:
        log.warning(
            "History tag %s%s is not an airflow-mlops event (%s): skipped; it is kept as it is",
            key,
            f" of {model}" if model else "",
            why,
        )
    return history


def parse_history(model_tags: dict[str, str], alias: str) -> list[HistoryEvent]:
    """The done events of ``alias`` (the history proper), oldest first; see :func:`read_history`."""
    return read_history(model_tags, alias).done


def _event(seq: int, alias: str, value: str) -> HistoryEvent:
    try:
        data = json.loads(value)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    action = data.get("action", "promote")
    status = data.get("status", DONE)
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if "version" not in data:
        raise ValueError("no 'version'")
    version = _version(data.get("version"))
    if version is None:
        raise ValueError(f"version {data.get('version')!r} is not a version number")
    previous = data.get("previous_version")
    if previous is not None and _version(previous) is None:
        raise ValueError(f"previous_version {previous!r} is not a version number")
    share = data.get("share")
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))):
        raise ValueError(f"share {share!r} is not a number")
    if action in ROLLOUT_ACTIONS and share is None:
        raise ValueError(f"a {action} event without a share")
    plan = data.get("plan")
    if plan is not None and not isinstance(plan, dict):
        raise ValueError(f"plan {plan!r} is not an object")
    return HistoryEvent(
        seq=seq,
        alias=alias,
        action=action,
        version=version,
        previous_version=_version(previous),
        at=str(data.get("at") or ""),
        reason=_opt_str(data.get("reason")),
        forced=data.get("forced") is True,
        dag_id=_opt_str(data.get("dag_id")),
        run_id=_opt_str(data.get("run_id")),
        task_id=_opt_str(data.get("task_id")),
        user=_opt_str(data.get("user")),
        approved_by=_opt_str(data.get("approved_by")),
        map_index=data.get("map_index") if isinstance(data.get("map_index"), int) else None,
        status=status,
        note=_opt_str(data.get("note")),
        share=float(share) if share is not None else None,
        control=_version(data.get("control")),
        plan=plan,
    )


def _version(value: Any) -> str | None:
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    return str(int(text)) if text.isdigit() and int(text) > 0 else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def rollback_target(history: list[HistoryEvent], current: str) -> str:
    """The version that held the alias before ``current`` was promoted to it.

    ``history`` is the done events. Rollback events are skipped on purpose: after rolling back
    from v3 to v2, the next rollback goes to whatever v2 replaced when v2 was promoted, not back
    to v3.
    """
    for event in reversed(history):
        if event.status == DONE and event.action == "promote" and event.version == current:
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
