"""The registry lock: a short lease on ``name@alias`` that any process or machine can take.

The lock is a registered model ``<name>.mlops-lock.<alias>``: MLflow refuses atomically to create a
second model of the same name (a unique key in its store), which is the compare-and-set primitive
aliases lack. Its tags say who holds it and until when:

- ``mlops.lock.owner``: a token unique to this acquisition (and the marker that tells a lock from
  a model that merely has the lock's name, which is refused and never deleted);
- ``mlops.lock.expires``: epoch seconds; the holder renews it before a write once half of the TTL
  is spent, so only a holder that died (or cannot reach the registry) lets it lapse;
- ``mlops.lock.task``: the task instance holding it (dag/run/task/map index). Airflow runs one try
  of a task instance at a time, so when a retry finds its own task's lock, the try that took it is
  dead: the retry takes it over at once instead of waiting for the expiry.

A holder checks its lease before every write and stops (:class:`RegistryBusy`, retried) once it
may have run out, so a holder that was too slow never writes after someone broke its lock.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags
from airflow_mlops.core.registry.errors import RegistryBusy, RegistryStateError
from airflow_mlops.core.registry.validate import lock_name

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

LOCK_TTL = 20.0
"""Seconds a lock outlives its holder: the longest a dead holder's lock blocks another task."""
_CONTENTION = ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")
_MAX_POLL = 1.0


def task_identity(origin: dict[str, Any]) -> str | None:
    """``dag_id/run_id/task_id[/map_index]`` of a task instance, or None outside a task."""
    if not origin.get("run_id"):
        return None
    parts = [str(origin.get(k) or "") for k in ("dag_id", "run_id", "task_id")]
    index = origin.get("map_index")
    if index is not None and int(index) >= 0:
        parts.append(str(int(index)))
    return "/".join(parts)


class RegistryLock:
    """Hold ``name@alias`` exclusively: ``with RegistryLock(...) as lock:`` and
    ``lock.check()`` before each write.

    :param task: :func:`task_identity` of the holder (None: no takeover of a dead try's lock).
    :param ttl: lease length in seconds (renewed while held).
    :param timeout: seconds to wait for another holder before :class:`RegistryBusy`.
    """

    def __init__(
        self,
        client: MlflowClient,
        name: str,
        alias: str,
        *,
        task: str | None,
        ttl: float = LOCK_TTL,
        timeout: float = 120.0,
    ) -> None:
        self.client = client
        self.name = name
        self.alias = alias
        self.lock_name = lock_name(name, alias)
        self.task = task
        self.ttl = ttl
        self.timeout = timeout
        # a breaker on another machine compares our expiry with its own clock: keep a margin
        self.margin = min(2.0, ttl / 4)
        self.token = f"{task or 'manual'}#{uuid.uuid4().hex[:12]}"
        self._valid_until: float | None = None

    def __enter__(self) -> RegistryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ taking it

    def acquire(self) -> None:
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            started = time.monotonic()
            lock_tags = {tags.LOCK_OWNER: self.token, tags.LOCK_EXPIRES: f"{time.time() + self.ttl:.3f}"}
            if self.task:
                lock_tags[tags.LOCK_TASK] = self.task
            try:
                self.client.create_registered_model(
                    self.lock_name,
                    tags=lock_tags,
                    description=f"airflow-mlops lock for {self.name}@{self.alias}, held by {self.token}. "
                    f"It expires by itself ({tags.LOCK_EXPIRES}); safe to delete when no move is running.",
                )
                self._valid_until = started + self.ttl - self.margin
                return
            except MlflowException as err:
                # RESOURCE_DOES_NOT_EXIST is contention too: MLflow's SQL store answers a unique-key
                # clash by reading the existing model for its message, and the holder may release
                # (delete) it in between (seen in the eight-way race test).
                if getattr(err, "error_code", "") not in _CONTENTION:
                    raise
            held = self._read()
            if held is not None and self._clear_dead(held):
                continue
            if time.monotonic() > deadline:
                owner = (held or {}).get(tags.LOCK_OWNER, "a holder that just left")
                raise RegistryBusy(
                    f"could not lock {self.name}@{self.alias} within {self.timeout:.0f}s: "
                    f"{owner} holds the registry lock {self.lock_name!r} (it expires at the latest "
                    f"{self.ttl:.0f}s after its holder stops)"
                )
            time.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 1.5, _MAX_POLL)

    def _read(self) -> dict[str, str] | None:
        """The lock's tags, or None when it is gone (released in between)."""
        model = self._get()
        return None if model is None else dict(model.tags)

    def _get(self) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(self.lock_name)
        except MlflowException as err:
            if getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def _clear_dead(self, held: dict[str, str]) -> bool:
        """Delete the lock if its holder is dead; True when it was (or was already) gone."""
        owner = held.get(tags.LOCK_OWNER)
        if owner is None:
            return self._foreign()
        if self.task and held.get(tags.LOCK_TASK) == self.task:
            log.warning(
                "Registry lock %s was left by an earlier try of this task instance (%s): taking it over",
                self.lock_name,
                owner,
            )
        elif _expired(held):
            # read again: another waiter may have broken it and taken a fresh one meanwhile
            again = self._read()
            if again is None or again.get(tags.LOCK_OWNER) != owner:
                return again is None
            log.warning(
                "Registry lock %s of %s expired at %s without being released (its holder died): breaking it",
                self.lock_name,
                owner,
                held.get(tags.LOCK_EXPIRES),
            )
        else:
            return False
        self._delete()
        return True

    def _foreign(self) -> bool:
        """A model with the lock's name but no owner: a lock being deleted as we read it (MLflow
        reads a model and its tags in two queries), or a model that is not a lock at all. Only the
        same model read twice without an owner is refused."""
        first = self._get()
        if first is None or tags.LOCK_OWNER in first.tags:
            return first is None
        time.sleep(0.2)
        second = self._get()
        if second is None or tags.LOCK_OWNER in second.tags:
            return second is None
        if second.creation_timestamp != first.creation_timestamp:
            return False
        raise RegistryStateError(
            f"a registered model named {self.lock_name!r} exists but is not an airflow-mlops lock "
            f"(it has no {tags.LOCK_OWNER} tag), so {self.name}@{self.alias} cannot be locked; "
            "rename that model (airflow-mlops never deletes it)"
        )

    def _delete(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(self.lock_name)
        except MlflowException as err:
            if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise

    # ------------------------------------------------------------------ holding it

    def check(self) -> None:
        """Before a write: stop if the lease may have run out, renew it once half is spent."""
        if self._valid_until is None:
            raise RegistryBusy(f"the registry lock {self.lock_name!r} is not held")
        left = self._valid_until - time.monotonic()
        if left <= 0:
            raise RegistryBusy(
                f"the lease on the registry lock {self.lock_name!r} ran out {-left:.1f}s before the "
                f"move of {self.name}@{self.alias} finished (registry calls took longer than "
                f"{self.ttl:.0f}s): nothing more was written; a retry completes or undoes the move"
            )
        if left < self.ttl / 2:
            started = time.monotonic()
            self.client.set_registered_model_tag(
                self.lock_name, tags.LOCK_EXPIRES, f"{time.time() + self.ttl:.3f}"
            )
            self._valid_until = started + self.ttl - self.margin

    # ------------------------------------------------------------------ giving it back

    def release(self) -> None:
        """Delete the lock if it is still ours. A failure is logged, not raised: the move is
        complete, and the lock expires by itself within the TTL."""
        from mlflow.exceptions import MlflowException

        if self._valid_until is None:
            return
        expired = time.monotonic() >= self._valid_until
        self._valid_until = None
        try:
            if expired:
                held = self._read()
                if held is None or held.get(tags.LOCK_OWNER) != self.token:
                    return  # broken after its expiry by another mover: nothing of ours to release
            self._delete()
        except (MlflowException, OSError) as err:
            log.warning(
                "Could not release the registry lock %s (%s): it expires by itself within %.0fs; "
                "until then other moves of %s@%s wait for it",
                self.lock_name,
                err,
                self.ttl,
                self.name,
                self.alias,
            )


def _expired(held: dict[str, str]) -> bool:
    """True when the lock's expiry has passed (or it has none: a lock is never eternal)."""
    try:
        return float(held.get(tags.LOCK_EXPIRES) or 0) < time.time()
    except ValueError:
        return True
