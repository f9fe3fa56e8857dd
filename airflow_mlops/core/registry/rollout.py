"""Canary rollouts in the registry: the canary alias, its history, and the traffic, moved together.

The registry always says what serves which share: ``@champion`` serves ``100 - share`` percent,
``@canary`` (the candidate) serves ``share``, and the last done event of the canary alias's
history (``canary_start``, ``canary_step``, ``canary_complete``, ``canary_abort``) holds that
share. With no rollout running ``@canary`` has no holder and ``@champion`` serves everything.

A rollout move extends the alias protocol of :mod:`.moves` (same lock, same write-ahead
history, same settling of what a crashed mover left) with the traffic, under the lock of the
canary alias:

1. read the registered model once; settle pending canary events left by another mover;
2. decide from the done events (this task's own earlier move returns as it is; the expected
   rollout and share are a compare-and-set);
3. write the event as *pending* (the intent: the shares it is about to set);
4. set the traffic (``apply``: the deployment target's call, quick and idempotent: it sets the
   full state, both shares);
5. move the aliases: a start points ``@canary`` at the candidate; a completion moves
   ``@champion`` to it (:func:`.moves.promote`, compare-and-set against the control the rollout
   started with, its own history event) and removes ``@canary``; an abort removes ``@canary``;
6. tag the candidate version, rewrite the event as *done*, read ``@canary`` back.

A crash anywhere leaves the intent pending: the same task instance's retry resumes it (sets the
same traffic again, moves the aliases, marks it done); any other mover settles it from the
aliases -- a start is done when ``@canary`` holds its candidate, a completion when ``@champion``
does, an abort when ``@canary`` is gone (each is written after its traffic), a step is aborted
(no alias tells whether its traffic moved) -- and then sets the traffic of its own move, so the
target agrees with the last done event again. ``docs/deploy/index.md`` has the crash table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.canary import RolloutPlan
from airflow_mlops.core.registry import moves, record, validate
from airflow_mlops.core.registry.errors import RegistryConflict, RegistryInputError, RegistryStateError
from airflow_mlops.core.registry.history import (
    ABORTED,
    CANARY_ABORT,
    CANARY_COMPLETE,
    CANARY_START,
    CANARY_STEP,
    DONE,
    History,
    HistoryEvent,
    read_history,
)
from airflow_mlops.core.registry.lock import LOCK_TTL, RegistryLock, task_identity
from airflow_mlops.core.registry.rollout_state import (
    Apply,
    RolloutMove,
    RolloutState,
    attribution,
    checked_plan,
    checked_share,
    expect_active,
    new_event,
    opt,
    rollout_state,
    state_of,
    traffic_after,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from airflow_mlops.core.canary import Traffic

__all__ = [
    "Apply",
    "RolloutMove",
    "RolloutState",
    "abort",
    "complete",
    "rollout_state",
    "start",
    "step",
    "sync",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- the four moves


def start(
    client: MlflowClient,
    name: str,
    version: str | int,
    *,
    plan: RolloutPlan | dict[str, Any],
    expected_control: Any = None,
    apply: Apply | None,
    **kwargs: Any,
) -> RolloutMove:
    """Start a canary of ``version`` at the plan's first share against the holder of
    ``@champion`` (the control), which must be ``expected_control`` when given.

    Starting the candidate that is already in canary returns that rollout unchanged.

    :raises RegistryConflict: another canary is running, or ``@champion`` is not at ``expected_control``.
    :raises RegistryStateError: no such version, no champion to compare with, or the version is
        already the champion.
    """
    version = validate.check_version(version)
    plan = plan if isinstance(plan, RolloutPlan) else checked_plan(plan)
    expected = validate.normalize_expected(expected_control)

    def decide(state: RolloutState) -> HistoryEvent | RolloutMove:
        if state.active:
            if state.candidate == version:
                return RolloutMove(state.start, False, state)
            raise RegistryConflict(
                f"a canary of v{state.candidate} of {name} is running: v{version} cannot start"
            )
        if state.champion is None:
            raise RegistryStateError(f"{name} has no @{state.champion_alias} to compare a canary with")
        if expected is not None and state.champion != expected:
            raise RegistryConflict(
                f"refusing to start a canary of v{version}: @{state.champion_alias} of {name} is at "
                f"{record.describe(state.champion)}, expected {record.describe(expected)}"
            )
        if state.champion == version:
            raise RegistryStateError(f"v{version} of {name} is already @{state.champion_alias}")
        return new_event(
            state, CANARY_START, version, state.canary_holder, state.champion, plan.steps[0], plan.to_dict()
        )

    return _rollout(client, name, CANARY_START, decide, apply=apply, check_version=version, **kwargs)


def step(
    client: MlflowClient,
    name: str,
    *,
    rollout: str | None = None,
    share: float | None = None,
    apply: Apply | None,
    **kwargs: Any,
) -> RolloutMove:
    """Move the running canary to ``share`` percent (default: the plan's next step below 100).

    :param rollout: the rollout id the decision was made on (compare-and-set).
    """

    def decide(state: RolloutState) -> HistoryEvent:
        expect_active(state, rollout, name)
        target = state.plan.next_share(state.share) if share is None else checked_share(share)
        if not (state.share < target < 100):
            raise RegistryInputError(
                f"share: {target:g} is not a step up from {state.share:g} % below 100 (the completion "
                "moves to 100 %)"
            )
        return new_event(state, CANARY_STEP, state.candidate, state.candidate, state.control, target)

    return _rollout(client, name, CANARY_STEP, decide, apply=apply, **kwargs)


def complete(
    client: MlflowClient, name: str, *, rollout: str | None = None, apply: Apply | None, **kwargs: Any
) -> RolloutMove:
    """Give the candidate all traffic and make it ``@champion`` (compare-and-set against the
    control the rollout started with); ``@canary`` is removed.

    :raises RegistryConflict: the rollout is not the one expected, or ``@champion`` moved since
        the canary started (the move is refused before any traffic changes).
    """

    def decide(state: RolloutState) -> HistoryEvent:
        expect_active(state, rollout, name)
        # at the candidate already: an earlier try of this completion moved it before it stopped
        if state.champion not in (state.control, state.candidate):
            raise RegistryConflict(
                f"refusing to complete the canary of v{state.candidate}: @{state.champion_alias} of {name} "
                f"moved to {record.describe(state.champion)} since the canary started against v{state.control}"
            )
        return new_event(state, CANARY_COMPLETE, state.candidate, state.candidate, state.control, 100.0)

    return _rollout(client, name, CANARY_COMPLETE, decide, apply=apply, **kwargs)


def abort(
    client: MlflowClient, name: str, *, rollout: str | None = None, apply: Apply | None, **kwargs: Any
) -> RolloutMove:
    """Put all traffic back on the control and remove ``@canary``; ``@champion`` is untouched.
    Aborting a rollout that already ended with an abort returns that abort unchanged."""

    def decide(state: RolloutState) -> HistoryEvent | RolloutMove:
        if not state.active:
            last = state.last
            if last is not None and last.action == CANARY_ABORT and rollout in (None, state.rollout_id):
                return RolloutMove(last, False, state)
            ended = (
                "no canary has run" if last is None else f"the last one ended with {last.action} at {last.at}"
            )
            raise RegistryConflict(f"no canary of {name} is running to abort ({ended})")
        expect_active(state, rollout, name)
        return new_event(state, CANARY_ABORT, state.candidate, state.candidate, state.control, 0.0)

    return _rollout(client, name, CANARY_ABORT, decide, apply=apply, **kwargs)


def sync(
    client: MlflowClient,
    name: str,
    *,
    apply: Apply,
    origin: dict[str, Any] | None = None,
    canary_alias: str = "canary",
    champion_alias: str = "champion",
    lock_timeout: float = 120.0,
    lock_ttl: float = LOCK_TTL,
) -> Traffic:
    """With no canary running, set the target's traffic to ``@champion`` alone (after the champion
    was rolled back or promoted without a canary). Nothing is written but what settling needs.

    :raises RegistryConflict: a canary is running (abort it instead).
    """
    origin = validate.check_origin(origin)
    with RegistryLock(
        client, name, canary_alias, task=task_identity(origin), ttl=lock_ttl, timeout=lock_timeout
    ) as held:
        _, _, _, state = _read_settled(client, held, name, origin, canary_alias, champion_alias)
        if state.active:
            raise RegistryConflict(f"a canary of v{state.candidate} of {name} is running: abort it to sync")
        if state.champion is None:
            raise RegistryStateError(f"{name} has no @{champion_alias} to serve")
        traffic = state.traffic()
        held.check()
        apply(traffic)
        return traffic


# ---------------------------------------------------------------------- the sequence


def _rollout(
    client: MlflowClient,
    name: str,
    action: str,
    decide: Callable[[RolloutState], HistoryEvent | RolloutMove],
    *,
    apply: Apply | None,
    reason: str | None = None,
    origin: dict[str, Any] | None = None,
    canary_alias: str = "canary",
    champion_alias: str = "champion",
    lock_timeout: float = 120.0,
    lock_ttl: float = LOCK_TTL,
    check_version: str | None = None,
) -> RolloutMove:
    canary_alias = validate.check_alias(canary_alias)
    champion_alias = validate.check_alias(champion_alias)
    if canary_alias == champion_alias:
        raise RegistryInputError(f"canary_alias: must differ from the champion alias {champion_alias!r}")
    name = validate.check_model_name(name, canary_alias)
    validate.check_model_name(name, champion_alias)
    reason = validate.check_reason(reason)
    origin = moves._checked(origin, reason, lock_timeout, lock_ttl)
    if check_version is not None:
        moves._get_version(client, name, check_version)

    with RegistryLock(
        client, name, canary_alias, task=task_identity(origin), ttl=lock_ttl, timeout=lock_timeout
    ) as held:
        aliases, history, own, state = _read_settled(client, held, name, origin, canary_alias, champion_alias)
        ours = history.by_task(origin, action)
        if own is None and ours is not None:
            log.info(
                "This task instance already recorded %s of %s (history event %s)", action, name, ours.seq
            )
            return RolloutMove(ours, False, state)
        decided = decide(state)
        if isinstance(decided, RolloutMove):
            if own is not None:
                record.finish(client, held, name, own, ABORTED, "superseded by a later try of the same task")
            return decided
        same = own is not None and (own.action, own.version, own.share, own.control) == (
            decided.action,
            decided.version,
            decided.share,
            decided.control,
        )
        if own is not None and not same:
            record.finish(client, held, name, own, ABORTED, "superseded by a later try of the same task")
        if same:
            log.warning(
                "Resuming %s of %s to %s %% that an earlier try of this task started (history event %s)",
                action,
                name,
                f"{own.share:g}",
                own.seq,
            )
            event = replace(own, reason=reason)
        else:
            event = replace(decided, seq=history.last_seq + 1, reason=reason, **attribution(origin))
            record.write(client, held, name, event)
        traffic = traffic_after(event)
        if apply is not None:
            held.check()
            apply(traffic)
        _move_aliases(
            client,
            held,
            name,
            event,
            aliases,
            origin,
            reason,
            canary_alias,
            champion_alias,
            lock_timeout,
            lock_ttl,
        )
        event = record.finish(client, held, name, event, DONE)
        after = moves.current_holder(client, name, canary_alias)
    wanted = event.version if action in (CANARY_START, CANARY_STEP) else None
    if after != wanted:
        raise RegistryConflict(
            f"@{canary_alias} of {name} is at {record.describe(after)} right after {action} (history event "
            f"{event.seq}) set it to {record.describe(wanted)}: another writer moved it; check the registry"
        )
    history.events = [e for e in history.events if e.seq != event.seq] + [event]
    history.events.sort(key=lambda e: e.seq)
    aliases[canary_alias] = wanted
    if action == CANARY_COMPLETE:
        aliases[champion_alias] = event.version
    return RolloutMove(event, True, state_of(name, aliases, history, canary_alias, champion_alias))


def _read_settled(
    client: MlflowClient,
    held: RegistryLock,
    name: str,
    origin: dict[str, Any],
    canary_alias: str,
    champion_alias: str,
) -> tuple[dict[str, Any], History, HistoryEvent | None, RolloutState]:
    """Under the lock: read the model once, settle what other movers left pending, and return
    the aliases, the history, this task's own pending event (if any) and the rollout."""
    model = client.get_registered_model(name)
    aliases = dict(model.aliases or {})
    history = read_history(dict(model.tags), canary_alias, model=name)
    own = _settle(client, held, name, history, aliases, origin, canary_alias, champion_alias)
    return aliases, history, own, state_of(name, aliases, history, canary_alias, champion_alias)


def _move_aliases(
    client: MlflowClient,
    held: RegistryLock,
    name: str,
    event: HistoryEvent,
    aliases: dict[str, Any],
    origin: dict[str, Any],
    reason: str | None,
    canary_alias: str,
    champion_alias: str,
    lock_timeout: float,
    lock_ttl: float,
) -> None:
    if event.action == CANARY_START:
        if opt(aliases.get(canary_alias)) != event.version:
            record.set_alias(client, held, name, event)
        return
    if event.action == CANARY_COMPLETE:
        held.check()
        # the champion's own move: its lock, its history event, compare-and-set against the
        # control this rollout started with; a retry of this task finds its done event
        moves.promote(
            client,
            name,
            event.version,
            champion_alias,
            expected_current=event.control,
            reason=f"canary of v{event.version} completed: {reason or 'the analysis held'}",
            origin=origin,
            lock_timeout=lock_timeout,
            lock_ttl=lock_ttl,
        )
    if event.action in (CANARY_COMPLETE, CANARY_ABORT):
        _drop_alias(client, held, name, canary_alias)


def _drop_alias(client: MlflowClient, held: RegistryLock, name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    held.check()
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as err:
        if not moves.is_not_found(err):
            raise


def _settle(
    client: MlflowClient,
    held: RegistryLock,
    name: str,
    history: History,
    aliases: dict[str, Any],
    origin: dict[str, Any],
    canary_alias: str,
    champion_alias: str,
) -> HistoryEvent | None:
    """Settle the pending events another mover left (see the module docstring); return this task
    instance's own pending event, which its caller resumes or aborts."""
    own = None
    last = history.events[-1] if history.events else None
    canary, champion = opt(aliases.get(canary_alias)), opt(aliases.get(champion_alias))
    for event in history.pending:
        if event is last and event.same_task(origin):
            own = event
            continue
        moved = event is last and (
            (event.action == CANARY_START and canary == event.version)
            or (event.action == CANARY_COMPLETE and champion == event.version)
            or (event.action == CANARY_ABORT and canary is None)
        )
        who = task_identity(origin) or "a later move"
        if moved:
            note = f"completed by {who}: its mover stopped after its traffic and aliases moved"
        elif event.action == CANARY_STEP and event is last:
            note = f"aborted by {who}: its mover stopped; its traffic may have moved, {who} set it again"
        else:
            note = (
                f"aborted by {who}: its mover stopped before its aliases moved; {who} set the traffic again"
            )
        log.warning(
            "Rollout event %s of %s (%s to v%s at %s %% by %s) was left pending: marked %s",
            event.seq,
            name,
            event.action,
            event.version,
            event.share,
            event.by(),
            DONE if moved else ABORTED,
        )
        settled = record.finish(client, held, name, event, DONE if moved else ABORTED, note)
        history.events[history.events.index(event)] = settled
        if moved and event.action == CANARY_COMPLETE and canary is not None:
            _drop_alias(client, held, name, canary_alias)
            aliases.pop(canary_alias, None)
    return own
