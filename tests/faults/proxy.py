"""A client proxy that records every registry call and kills the server at a chosen one.

The registry protocol talks to MLflow only through the ``MlflowClient`` the hook's session
yields; wrapping that client sees every call a promotion or a rollback makes, in order. A clean
run with the proxy records the list of calls; each fault case then kills the server at one
position of that list, so a call added to the protocol is covered without editing the suite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from airflow_mlops.core import tags

BEFORE = "before"
"""Kill before the call is sent: the server died between the previous call and this one."""
AFTER = "after"
"""Kill after the server answered, and fail the call as a lost response would: the write
happened, the caller cannot know it."""


@dataclass(frozen=True)
class CrashPoint:
    index: int  # position in the recorded call list
    method: str
    when: str  # BEFORE | AFTER
    last: bool  # the last call of the move (the lock release)

    @property
    def id(self) -> str:
        return f"{self.when}-{self.index:02d}-{self.method}"


def crash_points(calls: list[str]) -> list[CrashPoint]:
    """Every call before it is sent; and, after the server applied it, the last call of each
    kind of write (the lock's creation and release, the alias, the last version tag, the event
    marked done). A write applied whose answer was lost leaves the state of the crash before the
    next call; these cases add the client's side: the call that fails is the one that worked."""
    end = len(calls) - 1
    points = [CrashPoint(i, m, BEFORE, i == end) for i, m in enumerate(calls)]
    last = {m: i for i, m in enumerate(calls) if _is_write(m)}
    points += [CrashPoint(i, m, AFTER, i == end) for m, i in sorted(last.items(), key=lambda kv: kv[1])]
    return points


def distinct_states(calls: list[str]) -> list[CrashPoint]:
    """One crash point per registry state a crash can leave behind: before the first call, and
    before the first call after each run of identical writes (a crash between two version tags
    leaves the same kind of state as one before them)."""
    return [
        p
        for p in crash_points(calls)
        if p.when == BEFORE
        and (p.index == 0 or (_is_write(calls[p.index - 1]) and calls[p.index - 1] != p.method))
    ]


def _is_write(method: str) -> bool:
    return not method.startswith(("get_", "search_"))


def is_renewal(method: str, args: tuple, kwargs: dict) -> bool:
    """A renewal of the lock's lease: made only when a move is slow, so not a numbered call (the
    lease has its own tests)."""
    key = args[1] if len(args) > 1 else kwargs.get("key")
    return method == "set_registered_model_tag" and key == tags.LOCK_EXPIRES


class FaultyClient:
    """Forwards to ``client``; at ``point`` kills ``server`` (and restarts it when ``restart``)."""

    def __init__(
        self, client: Any, server: Any = None, point: CrashPoint | None = None, *, restart: bool = False
    ):
        self._client = client
        self._server = server
        self._point = point
        self._restart = restart
        self.calls: list[str] = []
        self.started: list[float] = []  # wall clock at each numbered call
        self.renewals = 0
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if is_renewal(name, args, kwargs):
                self.renewals += 1
                return attr(*args, **kwargs)
            index = len(self.calls)
            self.calls.append(name)
            self.started.append(time.time())
            point = self._point
            hit = point is not None and not self.fired and point.index == index
            if hit:
                assert point.method == name, f"call #{index} is {name}, the recorded run had {point.method}"
            if hit and point.when == BEFORE:
                self._crash()
                try:
                    return attr(*args, **kwargs)
                finally:
                    self._recover()
            result = attr(*args, **kwargs)
            if hit and point.when == AFTER:
                self._crash()
                try:
                    # the genuine error a client gets from a server that is gone
                    self._client.get_registered_model("response-lost")
                finally:
                    self._recover()
                raise AssertionError("a call to a killed server succeeded")
            return result

        return call

    def lock_attempts(self) -> list[float]:
        """When each attempt to create the lock model started (one per poll while waiting)."""
        return [t for m, t in zip(self.calls, self.started, strict=True) if m == "create_registered_model"]

    def _crash(self) -> None:
        self.fired = True
        self._server.kill()

    def _recover(self) -> None:
        if self._restart:
            self._server.restart()
