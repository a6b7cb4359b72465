"""Waiting for work done on other tasks or threads, never by sleeping a fixed time.

``settle`` waits for pending work by awaiting it; ``eventually`` polls a condition that no
task of ours can be awaited for (another thread, a socket), bounded in time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Drain = Callable[[], Awaitable[object]]
# Each round awaits all pending work to its end, so this bounds how deep work may spawn more
# work (a timer re-arming itself forever), not how long anything may take.
MAX_ROUNDS = 100


async def settle(
    *drains: Drain,
    pending: Callable[[], Iterable[asyncio.Future[Any]]],
    rounds: int = MAX_ROUNDS,
) -> None:
    """Run every drain, then await whatever ``pending()`` still names, until nothing is left.

    Raises ``AssertionError`` naming the work still pending after ``rounds`` rounds. Failures
    of the awaited work are not raised here: the test asserts on their effects.
    """
    for _ in range(rounds):
        for drain in drains:
            await drain()
        waiting = [task for task in pending() if not task.done()]
        if not waiting:
            return
        await asyncio.gather(*waiting, return_exceptions=True)
    still = [_name(task) for task in pending() if not task.done()]
    raise AssertionError(f"work still pending after {rounds} rounds: {still}")


def _name(work: asyncio.Future[Any]) -> str:
    return work.get_name() if isinstance(work, asyncio.Task) else repr(work)


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.002)
