"""Canary rollout moves: start a canary, step it up, promote it, abort it (the analysis and batch
scoring are in :mod:`airflow_mlops.operators.canary`).

Each is a thin shell: it reads the rollout from the registry (:meth:`MlflowHook.rollout_state`),
asks :mod:`airflow_mlops.core.canary` what to do, moves the rollout with
:meth:`MlflowHook.rollout` (the registry protocol, with the target's traffic call inside the
move), and waits for the endpoint in the triggerer when it has to. The deployment target, its
endpoint, variants and identities are constructor arguments that are **not** templated: they
come from the DAG file, never from the trigger form.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import emit, model_alias_uri, outlet_for, task_origin
from airflow_mlops.core import tags
from airflow_mlops.exceptions import DataInputError, MlopsError, PromotionConflict
from airflow_mlops.operators.canary import _CanaryOperator
from airflow_mlops.operators.registry import _default_pool

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlops.core.canary import Traffic
    from airflow_mlops.deploy.base import DeploymentTarget


class _MoveOperator(_CanaryOperator):
    """A move of the rollout: registry and traffic together, then a wait for the endpoint.

    :param reason: recorded with the move. Templated.
    :param lock_timeout: seconds to wait for the registry lock of the canary alias.
    :param deferrable: wait for an endpoint in the triggerer (default: yes for an endpoint target).
    :param poll_interval: seconds between two checks of the endpoint.
    :param ready_timeout: seconds before giving up on the endpoint becoming ready.
    """

    template_fields: Sequence[str] = ("reason",)
    action: str = ""

    def __init__(
        self,
        *,
        reason: str | None = None,
        lock_timeout: float = 120.0,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        ready_timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("pool", _default_pool())
        model_name = kwargs.get("model_name") or ""
        outlet = outlet_for(
            model_alias_uri(model_name, kwargs.get("canary_alias", tags.CANARY_ALIAS)), "mlops_canary"
        )
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), outlet]
        super().__init__(**kwargs)
        if poll_interval <= 0 or ready_timeout <= 0:
            raise ValueError("poll_interval and ready_timeout must be positive")
        self.reason = reason
        self.lock_timeout = lock_timeout
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout
        self._canary_outlet = outlet

    def execute(self, context: Context) -> Any:
        return self.run(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the endpoint became ready: every step of :meth:`run` is idempotent (the
        registry move returns this task's recorded move), so the run simply goes on."""
        event = event or {}
        if event.get("status") != "success":
            raise MlopsError(
                f"the {self.target} target did not become ready: {event.get('status')}: {event.get('message')}"
            )
        self.log.info("The %s target is ready: %s", self.target, event.get("message"))
        return self.run(context)

    @abstractmethod
    def run(self, context: Context) -> Any:
        """The move: what :meth:`execute` and, after a wait for the endpoint, :meth:`execute_complete`
        run (idempotent: the registry returns this task's recorded move)."""

    def move(self, context: Context, action: str, target: DeploymentTarget, **kwargs: Any) -> dict[str, Any]:
        move = self.hook.rollout(
            action,
            self.model_name,
            apply=target.apply,
            reason=self.reason,
            origin=_origin(context),
            lock_timeout=self.lock_timeout,
            **self.aliases(),
            **kwargs,
        )
        result = move.result()
        self.log.info(
            "%s %s of %s: %s (%s)%s; reason: %s",
            "Recorded" if move.changed else "Already recorded by this task:",
            action,
            self.model_name,
            f"canary v{result['version']} at {result['share']:g} %",
            _describe(result["traffic"]),
            "" if move.changed else " (nothing changed)",
            self.reason or "-",
        )
        self.wait(context, target, _traffic(result["traffic"]))
        emit(context, self._canary_outlet, model_alias_uri(self.model_name, self.canary_alias), result)
        return result

    def wait(self, context: Context, target: DeploymentTarget, traffic: Traffic) -> None:
        """Return once ``target`` can take ``traffic``; defer to the triggerer meanwhile (this task
        then resumes in :meth:`execute_complete` and runs again from the start)."""
        ready, message = target.ready(traffic)
        if ready:
            return
        deferrable = self.deferrable if self.deferrable is not None else self.target != "batch"
        if deferrable:
            trigger = target.trigger(traffic, self.poll_interval, self.ready_timeout)
            if trigger is not None:
                self.log.info("The %s target is not ready (%s): deferring", self.target, message)
                self.defer(trigger=trigger, method_name="execute_complete")
        deadline = time.monotonic() + self.ready_timeout
        while not ready:
            if time.monotonic() > deadline:
                raise MlopsError(
                    f"the {self.target} target is still not ready after {self.ready_timeout}s: {message}"
                )
            self.log.info(
                "The %s target is not ready (%s): checking again in %ss",
                self.target,
                message,
                self.poll_interval,
            )
            time.sleep(self.poll_interval)
            ready, message = target.ready(traffic)

    def on_kill(self) -> None:
        self.log.warning(
            "Killed: nothing is cancelled. The registry holds this move's intent as a pending event of "
            "@%s; this task's retry resumes it (the same traffic is set again), or the abort task settles "
            "it and puts all traffic back on @%s",
            self.canary_alias,
            self.champion_alias,
        )


class StartCanaryOperator(_MoveOperator):
    """
    Start a canary of the candidate (the holder of ``candidate_alias``, default ``challenger``)
    against ``@champion``: the target is prepared (models deployed with no traffic, waited for in
    the triggerer), then the registry records the start and the canary gets the plan's first share.

    Nothing starts (the task ends *skipped*, with the reason in its log) when there is no
    candidate, it is already the champion or in canary, another canary runs, or its canary already
    ended (:func:`airflow_mlops.core.canary.start_decision`).

    :param steps: canary shares in percent ending at 100 (``"10,50,100"``). Templated.
    :param bake_seconds: least time on each step. Templated.
    :param metric: per-outcome metric the analysis compares (``accuracy``, ``error_rate``,
        ``mae``, ``mse``).
    :param min_samples: labelled outcomes each arm needs before a verdict.
    :param alpha: the most the analysis may ever roll back a canary no worse than the control.
    :param tolerance: how much worse than the control the canary may be (metric units).
    :param require_approval: ask a human before full traffic (recorded in the plan). Templated.
    :param candidate_alias: the alias of the candidate to canary.
    :param expected_control: the champion the canary must start against (compare-and-set):
        ``"evaluated"`` (default) the one the candidate's evaluation record compared it with (no
        check without a record), a version, or None (no check). Templated.
    :return: the move: ``{model_name, action, rollout, version, control, share, traffic, changed}``
    """

    template_fields: Sequence[str] = (
        "reason",
        "steps",
        "bake_seconds",
        "require_approval",
        "expected_control",
    )
    action = "start"

    def __init__(
        self,
        *,
        candidate_alias: str = tags.CANDIDATE_ALIAS,
        steps: str | Sequence[float] = "10,50,100",
        bake_seconds: float | str | Sequence[float] = 3600.0,
        metric: str = "accuracy",
        min_samples: int = 200,
        alpha: float = 0.05,
        tolerance: float = 0.01,
        require_approval: bool | str = False,
        expected_control: str | None = "evaluated",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.candidate_alias = candidate_alias
        self.steps = steps
        self.bake_seconds = bake_seconds
        self.metric = metric
        self.min_samples = min_samples
        self.alpha = alpha
        self.tolerance = tolerance
        self.require_approval = require_approval
        self.expected_control = expected_control

    def plan(self) -> Any:
        from airflow_mlops.core.canary import RolloutPlan

        bake = self.bake_seconds
        if isinstance(bake, str):
            bake = [float(b) for b in bake.replace(",", " ").split()]
        try:
            return RolloutPlan(
                steps=self.steps,
                bake_seconds=bake,
                metric=self.metric,
                min_samples=self.min_samples,
                alpha=self.alpha,
                tolerance=self.tolerance,
                require_approval=_true(self.require_approval),
            )
        except (TypeError, ValueError) as err:
            raise DataInputError(f"rollout plan: {err}") from err

    def run(self, context: Context) -> Any:
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from airflow_mlops.core.canary import Traffic, start_decision

        plan = self.plan()
        state = self.state()
        candidate = self.hook.get_model_version(self.model_name, alias=self.candidate_alias, missing_ok=True)
        version = str(candidate.version) if candidate is not None else None
        if not (state.active and state.candidate == version and state.start.same_task(_origin(context))):
            start, why = start_decision(
                version, champion=state.champion, active_candidate=state.candidate, finished=state.finished
            )
            self.log.info("Canary of %s@%s: %s", self.model_name, self.candidate_alias, why)
            if not start:
                raise AirflowSkipException(why)
        expected = self.expected_control
        if expected == "evaluated":
            expected = _evaluated_against(candidate)
        target = self.deployment()
        target.prepare(Traffic(state.champion, version, 0.0))
        self.wait(context, target, Traffic(state.champion, version, 0.0))
        return self.move(context, "start", target, version=version, plan=plan, expected_control=expected)


class CanaryStepOperator(_MoveOperator):
    """
    Move the running canary to its plan's next share (or ``share``); the registry records the step.

    :param rollout: the rollout the decision was made on (the analysis's ``rollout``): a
        compare-and-set, so a step decided on a rollout that ended since is refused. Templated.
    :param share: the canary's new share in percent (default: the plan's next step). Templated.
    """

    template_fields: Sequence[str] = ("reason", "rollout", "share")
    action = "step"

    def __init__(
        self, *, rollout: str | None = None, share: float | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.rollout = rollout
        self.share = share

    def run(self, context: Context) -> Any:
        share = None if self.share in (None, "", "None") else float(self.share)
        return self.move(context, "step", self.deployment(), rollout=_opt(self.rollout), share=share)


class PromoteCanaryOperator(_MoveOperator):
    """
    Finish the running canary: the candidate gets all traffic, ``@champion`` moves to it with a
    compare-and-set against the control the rollout started with (its own history event, so
    ``mlops_rollback`` can walk it), ``@canary`` is removed; emits ``x-mlflow://<model>@champion``.

    :param rollout: see :class:`CanaryStepOperator`. Templated.
    """

    template_fields: Sequence[str] = ("reason", "rollout")
    action = "complete"

    def __init__(self, *, rollout: str | None = None, **kwargs: Any) -> None:
        champion = outlet_for(
            model_alias_uri(kwargs.get("model_name") or "", kwargs.get("champion_alias", "champion")),
            "mlops_model_alias",
        )
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), champion]
        super().__init__(**kwargs)
        self.rollout = rollout
        self._champion_outlet = champion

    def run(self, context: Context) -> Any:
        result = self.move(context, "complete", self.deployment(), rollout=_opt(self.rollout))
        event = {
            "model_name": self.model_name,
            "alias": self.champion_alias,
            "version": result["version"],
            "previous_version": result["control"],
            "action": "promote",
            "by": "canary",
            "reason": self.reason,
        }
        emit(context, self._champion_outlet, model_alias_uri(self.model_name, self.champion_alias), event)
        return result


class AbortCanaryOperator(_MoveOperator):
    """
    Put all traffic on ``@champion``. With a canary running: the traffic goes back to the control
    at once, the abort and its reason are recorded, ``@canary`` is removed and ``@champion`` is
    untouched. With none running: the target is aligned with ``@champion`` (after a rollback of
    a finished rollout, or a champion promoted without a canary); nothing is recorded but the
    target's traffic.

    :param rollout: the rollout to abort (compare-and-set); None aborts whichever runs. Templated.
    """

    template_fields: Sequence[str] = ("reason", "rollout")
    action = "abort"

    def __init__(self, *, rollout: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rollout = rollout

    def run(self, context: Context) -> Any:
        from airflow_mlops.core.canary import Traffic

        state = self.state()
        target = self.deployment()
        if not state.active:
            traffic = Traffic(state.champion)
            target.prepare(traffic)
            self.wait(context, target, traffic)
            try:
                applied = self.hook.rollout(
                    "sync",
                    self.model_name,
                    apply=target.apply,
                    origin=_origin(context),
                    lock_timeout=self.lock_timeout,
                    **self.aliases(),
                )
            except PromotionConflict as err:  # settling a crashed start left its canary running
                self.log.warning("%s: aborting it", err)
            else:
                self.log.info(
                    "No canary is running: the %s target now serves %s", self.target, applied.describe()
                )
                self.wait(context, target, applied)
                return {
                    "model_name": self.model_name,
                    "action": "sync",
                    "traffic": applied.to_dict(),
                    "changed": True,
                }
        return self.move(context, "abort", target, rollout=_opt(self.rollout))


def _evaluated_against(version: Any) -> str | None:
    """The champion the evaluation record on ``version`` compared it with ("none": there was none)."""
    try:
        record = json.loads((version.tags or {}).get(tags.EVAL_RECORD) or "null")
    except ValueError:
        return None
    if not isinstance(record, dict) or "champion" not in record:
        return None
    champion = record["champion"]
    return str(champion["version"]) if isinstance(champion, dict) and champion.get("version") else "none"


def _origin(context: Context) -> dict[str, Any]:
    index = getattr(context["ti"], "map_index", -1)
    return {**task_origin(context), "map_index": index if isinstance(index, int) else -1}


def _traffic(data: dict[str, Any]) -> Traffic:
    from airflow_mlops.core.canary import Traffic

    return Traffic.from_dict(data)


def _describe(data: dict[str, Any]) -> str:
    return _traffic(data).describe()


def _opt(value: Any) -> str | None:
    return None if value in (None, "", "None") else str(value)


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")
