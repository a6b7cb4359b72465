"""The service's timers: each periodic round (tick, sweep, outbox drain) runs on its own
tracked task, so stopping the service cancels and awaits every one of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("breakglass.app")

Work = Callable[[], Awaitable[object]]


class Timers:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, seconds: float, work: Work) -> None:
        """Run ``work`` every ``seconds`` (first after one interval) until :meth:`stop`."""
        self._tasks.append(asyncio.ensure_future(_every(seconds, work)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


async def _every(seconds: float, work: Work) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception:  # a failed round must not stop the timer
            log.exception("periodic %s failed", getattr(work, "__name__", "task"))
