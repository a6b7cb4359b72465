"""The service's timers: each periodic round (tick, sweep, outbox drain) runs on its own
tracked task, so stopping the service cancels and awaits every one of them.

A failed round is simply tried again at the next one. An outside fault (the database or a
tenant failing: :class:`~engine.errors.AdapterError`) is one WARNING line without a
traceback; anything else is a bug and keeps its traceback. The same error round after round
is logged once, then at most once per :data:`REPEAT_SECONDS`, and recovery is one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from engine.errors import AdapterError

log = logging.getLogger("breakglass.app")

Work = Callable[[], Awaitable[object]]
Clock = Callable[[], float]  # seconds, only ever compared with each other
REPEAT_SECONDS = 300.0  # a fault that persists is logged again after this long


class Timers:
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._clock = clock

    def every(self, seconds: float, work: Work) -> None:
        """Run ``work`` every ``seconds`` (first after one interval) until :meth:`stop`."""
        faults = Faults(getattr(work, "__name__", "task"), self._clock)
        self._tasks.append(asyncio.ensure_future(_every(seconds, work, faults)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class Faults:
    """The failures of one timer's rounds, logged so that a database outage or an error the
    tenant keeps returning is a few lines, not one (with a traceback) per round."""

    def __init__(self, name: str, clock: Clock = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._last: str | None = None  # the failing error's line; None while rounds succeed
        self._logged_at = 0.0
        self._repeats = 0  # failed rounds not logged since the last line

    def failed(self, exc: Exception) -> None:
        line = f"{type(exc).__name__}: {_first_line(exc)}"
        now = self._clock()
        if line == self._last and now - self._logged_at < REPEAT_SECONDS:
            self._repeats += 1
            return
        extra = {"repeats": self._repeats} if line == self._last else {}
        self._last, self._logged_at, self._repeats = line, now, 0
        if isinstance(exc, AdapterError):  # expected outside fault: no traceback
            log.warning("periodic %s failed: %s", self.name, line, extra=extra)
        else:
            log.error("periodic %s failed: %s", self.name, line, exc_info=exc, extra=extra)

    def succeeded(self) -> None:
        if self._last is not None:
            log.info("periodic %s recovered", self.name)
            self._last, self._repeats = None, 0


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:500]  # a tenant's message may be long


async def _every(seconds: float, work: Work, faults: Faults) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception as exc:  # a failed round must not stop the timer
            faults.failed(exc)
        else:
            faults.succeeded()
