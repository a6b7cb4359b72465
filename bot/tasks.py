"""Background work the service can find again: every spawned task is kept until it ends,
its failure is logged (never "Task exception was never retrieved"), and shutdown cancels
and awaits what is left."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from engine.errors import AdapterError

log = logging.getLogger("breakglass.tasks")
T = TypeVar("T")


class TaskSet:
    """A set of tasks; iterate it to see the live ones."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T], name: str = "") -> asyncio.Task[T]:
        task = asyncio.ensure_future(work)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, AdapterError):  # an outside fault (a store outage): no traceback
            log.error("background task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc)
        elif exc is not None:
            log.error("background task %s failed", task.get_name(), exc_info=exc)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    async def settle(self) -> None:
        """Wait until the work spawned so far, and what it spawned in turn, has ended."""
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel(self) -> None:
        """Shutdown: cancel every task and wait until each has ended (receipts included)."""
        while pending := [t for t in self._tasks if not t.done()]:
            # One turn of the loop first: a task cancelled before its first step never runs,
            # so it could not keep what it was handed (a chat post goes to the outbox then).
            await asyncio.sleep(0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
