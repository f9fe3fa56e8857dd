"""The rollout as the registry records it: read from the canary alias's history, and the events a
rollout move writes. :mod:`.rollout` makes the moves (the protocol is described there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.canary import RolloutPlan, Traffic
from airflow_mlops.core.registry import record, validate
from airflow_mlops.core.registry.errors import RegistryConflict, RegistryInputError
from airflow_mlops.core.registry.history import (
    CANARY_ABORT,
    CANARY_COMPLETE,
    CANARY_START,
    CANARY_STEP,
    History,
    HistoryEvent,
    read_history,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

Apply = Callable[[Traffic], None]
"""Sets the target's traffic to exactly this state (called under the lock: keep it short)."""


@dataclass
class RolloutState:
    """The rollout as the registry records it."""

    model_name: str
    canary_alias: str
    champion_alias: str
    champion: str | None
    canary_holder: str | None
    events: list[HistoryEvent] = field(default_factory=list)
    """Done events of the latest rollout, its start first."""
    pending: list[HistoryEvent] = field(default_factory=list)
    finished: dict[str, str] = field(default_factory=dict)
    """``{candidate: "canary_complete" | "canary_abort"}`` of every rollout that ended."""

    @property
    def active(self) -> bool:
        return bool(self.events) and self.events[-1].action in (CANARY_START, CANARY_STEP)

    @property
    def start(self) -> HistoryEvent | None:
        return self.events[0] if self.events else None

    @property
    def last(self) -> HistoryEvent | None:
        return self.events[-1] if self.events else None

    @property
    def rollout_id(self) -> str | None:
        """``<candidate>-<seq of its start event>``: names the rollout (and salts its arms)."""
        start = self.start
        return f"{start.version}-{start.seq}" if start else None

    @property
    def candidate(self) -> str | None:
        return self.start.version if self.active else None

    @property
    def control(self) -> str | None:
        return self.start.control if self.active else None

    @property
    def share(self) -> float:
        return float(self.last.share or 0.0) if self.active else 0.0

    @property
    def plan(self) -> RolloutPlan | None:
        start = self.start
        return RolloutPlan.from_dict(start.plan) if start and start.plan else None

    def traffic(self) -> Traffic:
        """What the target should serve now."""
        if self.active:
            return Traffic(self.control, self.candidate, self.share)
        return Traffic(self.champion)

    def summary(self) -> dict[str, Any]:
        """JSON for XCom and logs."""
        last = self.last
        return {
            "model_name": self.model_name,
            "active": self.active,
            "rollout": self.rollout_id,
            "candidate": self.candidate,
            "control": self.control,
            "champion": self.champion,
            "share": self.share,
            "step_at": last.at if self.active and last else None,
            "plan": self.start.plan if self.active and self.start else None,
            "traffic": self.traffic().to_dict(),
            "last_event": None
            if last is None
            else {"action": last.action, "version": last.version, "at": last.at},
            "pending": [e.seq for e in self.pending],
        }


@dataclass
class RolloutMove:
    event: HistoryEvent
    changed: bool
    state: RolloutState

    def result(self) -> dict[str, Any]:
        e = self.event
        return {
            "model_name": self.state.model_name,
            "action": e.action,
            "rollout": f"{e.version}-{start_seq(self.state, e)}",
            "version": e.version,
            "control": e.control,
            "share": e.share,
            "traffic": traffic_after(e).to_dict(),
            "changed": self.changed,
        }


def start_seq(state: RolloutState, event: HistoryEvent) -> int:
    starts = [e.seq for e in state.events if e.action == CANARY_START and e.seq <= event.seq]
    return starts[-1] if starts else event.seq


def rollout_state(
    client: MlflowClient, name: str, *, canary_alias: str = "canary", champion_alias: str = "champion"
) -> RolloutState:
    """Read the rollout of ``name`` (one registry call, nothing written)."""
    canary_alias = validate.check_alias(canary_alias)
    champion_alias = validate.check_alias(champion_alias)
    model = client.get_registered_model(name)
    history = read_history(dict(model.tags), canary_alias, model=name)
    return state_of(name, dict(model.aliases or {}), history, canary_alias, champion_alias)


def state_of(
    name: str, aliases: dict[str, Any], history: History, canary_alias: str, champion_alias: str
) -> RolloutState:
    state = RolloutState(
        model_name=name,
        canary_alias=canary_alias,
        champion_alias=champion_alias,
        champion=opt(aliases.get(champion_alias)),
        canary_holder=opt(aliases.get(canary_alias)),
        pending=history.pending,
    )
    for event in history.done:
        if event.action == CANARY_START:
            state.events = [event]
        elif state.events:
            state.events.append(event)
        if event.action in (CANARY_COMPLETE, CANARY_ABORT):
            state.finished[event.version] = event.action
    return state


# ---------------------------------------------------------------------- helpers


def new_event(
    state: RolloutState,
    action: str,
    version: str | None,
    previous: str | None,
    control: str | None,
    share: float,
    plan: dict[str, Any] | None = None,
) -> HistoryEvent:
    """The new event, numbered and attributed by the caller."""
    return record.new_event(
        {},
        seq=0,
        alias=state.canary_alias,
        action=action,
        version=str(version),
        previous=previous,
        reason=None,
        forced=False,
        share=float(share),
        control=control,
        plan=plan,
    )


def attribution(origin: dict[str, Any]) -> dict[str, Any]:
    index = origin.get("map_index")
    return {
        "dag_id": opt_str(origin.get("dag_id")),
        "run_id": opt_str(origin.get("run_id")),
        "task_id": opt_str(origin.get("task_id")),
        "user": opt_str(origin.get("user")),
        "map_index": int(index) if index is not None and int(index) >= 0 else None,
    }


def traffic_after(event: HistoryEvent) -> Traffic:
    if event.action == CANARY_COMPLETE:
        return Traffic(event.version)
    if event.action == CANARY_ABORT:
        return Traffic(event.control)
    return Traffic(event.control, event.version, float(event.share or 0.0))


def expect_active(state: RolloutState, rollout: str | None, name: str) -> None:
    if not state.active:
        last = state.last
        ended = "no canary has run" if last is None else f"the last one ended with {last.action} at {last.at}"
        raise RegistryConflict(f"no canary of {name} is running ({ended})")
    if rollout is not None and str(rollout) != state.rollout_id:
        raise RegistryConflict(
            f"the running canary of {name} is rollout {state.rollout_id}, not {rollout}: the decision was "
            "made on a rollout that has ended since"
        )


def checked_plan(data: dict[str, Any]) -> RolloutPlan:
    try:
        return RolloutPlan.from_dict(data)
    except (TypeError, ValueError) as err:
        raise RegistryInputError(f"plan: {err}") from err


def checked_share(value: Any) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise RegistryInputError(f"share: {value!r} is not a percentage") from None
    if not (0 < share < 100):
        raise RegistryInputError(f"share: {value!r} must be above 0 and below 100")
    return share


def opt(value: Any) -> str | None:
    return None if value is None else str(value)


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
