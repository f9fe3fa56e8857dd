"""Run a trigger the way the triggerer does, in a fresh event loop, until its first event."""

from __future__ import annotations

import asyncio
from typing import Any


def first_event(trigger: Any) -> Any:
    """The first ``TriggerEvent`` of ``trigger.run()``; an ``AssertionError`` when it fires none."""

    async def run() -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError(f"{type(trigger).__name__} fired no event")

    return asyncio.run(run())
