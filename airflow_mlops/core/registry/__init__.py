"""Moving an MLflow alias safely, with a history that rollback can walk, under any crash.

No Airflow import: the functions take an ``MlflowClient``. MLflow aliases are last-writer-wins,
so every move happens under a short lease on the alias (:mod:`.lock`, made from MLflow's own
atomic primitive: creating a registered model whose name is unique), after a compare-and-set
check, with a write-ahead history event (:mod:`.history`) that makes a crash at any call
recoverable by the next mover (:mod:`.moves`, writing through :mod:`.record`). Settings are checked before anything is read or
written (:mod:`.validate`). The protocol and its crash table are in ``docs/architecture.md``.
"""

from __future__ import annotations

from airflow_mlops.core.registry.errors import (
    RegistryBusy,
    RegistryConflict,
    RegistryInputError,
    RegistryStateError,
)
from airflow_mlops.core.registry.history import (
    History,
    HistoryEvent,
    parse_history,
    read_history,
    rollback_target,
)
from airflow_mlops.core.registry.lock import LOCK_TTL, RegistryLock, task_identity
from airflow_mlops.core.registry.moves import AliasMove, current_holder, is_not_found, promote, rollback
from airflow_mlops.core.registry.validate import LOCK_SUFFIX, NO_HOLDER, REASON_MAX, normalize_expected

__all__ = [
    "LOCK_SUFFIX",
    "LOCK_TTL",
    "NO_HOLDER",
    "REASON_MAX",
    "AliasMove",
    "History",
    "HistoryEvent",
    "RegistryBusy",
    "RegistryConflict",
    "RegistryInputError",
    "RegistryLock",
    "RegistryStateError",
    "current_holder",
    "is_not_found",
    "normalize_expected",
    "parse_history",
    "promote",
    "read_history",
    "rollback",
    "rollback_target",
    "task_identity",
]
