"""Registry operators: move an MLflow alias (promote) and move it back (rollback)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.assets import emit, model_alias_uri, outlet_for, task_origin
from airflow_mlops.exceptions import RegistryError
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.links.mlflow import MlflowModelVersionLink
from airflow_mlops.trust import check_approval, check_approval_args

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

DEFAULT_POOL = "mlops_registry"
"""Pool that serialises alias moves inside Airflow (create it with one slot; see docs)."""


def _default_pool() -> str:
    from airflow.providers.common.compat.sdk import conf

    return conf.get("mlops", "registry_pool", fallback=DEFAULT_POOL)


class _AliasOperator(BaseOperator):
    operator_extra_links = (MlflowModelVersionLink(),)
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        reason: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        lock_timeout: float = 120.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("pool", _default_pool())
        outlet = outlet_for(model_alias_uri(model_name, alias), "mlops_model_alias")
        kwargs["outlets"] = [*(kwargs.get("outlets") or []), outlet]
        super().__init__(**kwargs)
        if not model_name:
            raise ValueError("model_name is required")
        if (
            isinstance(lock_timeout, bool)
            or not isinstance(lock_timeout, (int, float))
            or not (math.isfinite(lock_timeout) and lock_timeout >= 0)
        ):
            raise ValueError(
                f"lock_timeout must be a finite number of seconds, 0 or more, got {lock_timeout!r}"
            )
        self.model_name = model_name
        self.alias = alias
        self.reason = reason
        self.mlflow_conn_id = mlflow_conn_id
        self.lock_timeout = lock_timeout
        self._alias_outlet = outlet

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    @staticmethod
    def _origin(context: Context) -> dict[str, Any]:
        """Who moves: the task instance (its map index included: each mapped instance is one
        mover, and a retry is recognised by it) and the triggering user."""
        index = getattr(context["ti"], "map_index", -1)
        return {**task_origin(context), "map_index": index if isinstance(index, int) else -1}

    def _finish(self, context: Context, move: Any, action: str) -> dict[str, Any]:
        result = move.result()
        event = {**result, "action": action, "changed": move.changed, "reason": self.reason}
        self._lineage = (event, self.hook.registry_uri)  # for get_openlineage_facets_on_complete
        MlflowModelVersionLink.persist(context, self.hook.model_version_url(self.model_name, move.version))
        emit(context, self._alias_outlet, model_alias_uri(self.model_name, self.alias), event)
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        from airflow_mlops.openlineage import alias_move_lineage

        return alias_move_lineage(self)


class PromoteModelOperator(_AliasOperator):
    """
    Point an MLflow alias (default ``champion``) at a model version, safely and on the record.

    The move is a compare-and-set: with ``expected_current`` the task refuses (``PromotionConflict``,
    no retry) when the alias no longer points where the decision to promote assumed. Moves of one
    model's alias are serialised by a registry lock and, inside Airflow, by the ``mlops_registry``
    pool (configurable as ``[mlops] registry_pool``); the alias is read back after the write. The
    history (previous holder, time, dag/run/task, user, reason) is written to the registered model
    and the version as tags, with a write-ahead record, so a task that loses the registry half-way
    fails as retriable (``MlopsError``) and its retry finishes or undoes exactly that move (give
    the task ``retries``). On success an Asset event ``x-mlflow://<model_name>@<alias>`` carries the
    new version, so a deployment DAG can be scheduled on it. Re-running for the version that
    already holds the alias, or re-running the task instance that moved it, changes nothing and
    returns the same result. Invalid settings (a version that is not a number, a reason over
    10,000 characters, an alias MLflow refuses) fail with ``RegistryError`` before anything moves.

    :param model_name: registered model name.
    :param version: version to promote (e.g. ``{{ ti.xcom_pull('train')['model_version'] }}``).
    :param alias: alias to move.
    :param expected_current: the version the alias must point at now; ``"none"`` means it must
        have no holder yet; None skips the check.
    :param reason: why, recorded in the history.
    :param forced: recorded in the history when a promotion bypassed the evaluation verdict.
        A forced promotion needs ``approved_by`` unless the triggering user is listed in
        ``[mlops] force_promote_users``.
    :param approved_by: who approved the promotion (the responder of an ``ApprovalOperator``),
        recorded in the history. Templated, from the approval task's result, never from the form.
    :param require_approval: refuse to promote without ``approved_by`` (the DAG author's setting; the
        deployment's ``[mlops] require_approval`` requires it for every promotion too).
    :param mlflow_conn_id: MLflow connection.
    :param lock_timeout: seconds to wait for a concurrent move of the same alias (then
        ``MlopsError``, retried). A lock left by a crashed task expires within 20 s; the same task's
        retry takes its own over at once.
    :return: ``{model_name, alias, version, previous_version}``
    """

    template_fields: Sequence[str] = (
        "model_name",
        "version",
        "alias",
        "expected_current",
        "reason",
        "forced",
        "approved_by",
    )

    def __init__(
        self,
        *,
        model_name: str,
        version: str | int,
        alias: str = "champion",
        expected_current: str | int | None = None,
        reason: str | None = None,
        forced: bool | str = False,
        approved_by: str | None = None,
        require_approval: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(model_name=model_name, alias=alias, reason=reason, **kwargs)
        check_approval_args(approved_by, require_approval)
        self.version = version
        self.expected_current = expected_current
        self.forced = forced
        self.approved_by = approved_by
        self.require_approval = require_approval

    def execute(self, context: Context) -> dict[str, Any]:
        version = str(self.version).strip()
        if not version or version.lower() == "none":
            raise RegistryError(f"no version to promote for {self.model_name} (got {self.version!r})")
        forced = str(self.forced).strip().lower() in ("true", "1", "yes")
        origin = self._origin(context)
        origin["approved_by"] = check_approval(origin, forced, self.approved_by, self.require_approval)
        move = self.hook.promote(
            self.model_name,
            version,
            alias=self.alias,
            expected_current=self.expected_current,
            reason=self.reason,
            forced=forced,
            origin=origin,
            lock_timeout=self.lock_timeout,
        )
        if move.changed:
            self.log.info(
                "Promoted %s v%s to @%s (previous holder: %s)%s; reason: %s",
                self.model_name,
                move.version,
                self.alias,
                f"v{move.previous_version}" if move.previous_version else "none",
                " [forced]" if forced else "",
                self.reason or "-",
            )
        else:
            self.log.info(
                "%s v%s already holds @%s: nothing to do (re-run of an earlier promotion)",
                self.model_name,
                move.version,
                self.alias,
            )
        return self._finish(context, move, "promote")


class RollbackModelOperator(_AliasOperator):
    """
    Point an MLflow alias back at the version it held before the current one.

    The previous holder is read from the promotion history that :class:`PromoteModelOperator`
    records; a second rollback walks one more step back. ``to_version`` picks the version
    explicitly. The rollback is recorded like a promotion and emits the same Asset event. Re-running
    the same task instance does not walk further back, also when its first try lost the registry
    between moving the alias and recording it.

    :param model_name: registered model name.
    :param alias: alias to move back.
    :param to_version: version to roll back to (default: the previous holder from the history).
    :param reason: why, recorded in the history.
    :param mlflow_conn_id: MLflow connection.
    :param lock_timeout: seconds to wait for a concurrent move of the same alias.
    :return: ``{model_name, alias, version, previous_version}`` (``version`` is the new holder,
        ``previous_version`` the one rolled back from).
    """

    template_fields: Sequence[str] = ("model_name", "alias", "to_version", "reason")

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        to_version: str | int | None = None,
        reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model_name=model_name, alias=alias, reason=reason, **kwargs)
        self.to_version = to_version

    def execute(self, context: Context) -> dict[str, Any]:
        move = self.hook.rollback(
            self.model_name,
            alias=self.alias,
            to_version=self.to_version,
            reason=self.reason,
            origin=self._origin(context),
            lock_timeout=self.lock_timeout,
        )
        if move.changed:
            self.log.info(
                "Rolled back @%s of %s from v%s to v%s; reason: %s",
                self.alias,
                self.model_name,
                move.previous_version,
                move.version,
                self.reason or "-",
            )
        else:
            self.log.info(
                "@%s of %s already at v%s: nothing to do", self.alias, self.model_name, move.version
            )
        return self._finish(context, move, "rollback")
