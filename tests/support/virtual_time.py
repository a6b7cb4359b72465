"""Virtual time for whole-system tests: one clock for the service and the simulated tenant.

Nothing waits for real: :meth:`VirtualClock.sleep` (handed to the job service and the Graph
client as their ``sleep``) moves the clock by the time asked for and yields once, so a
backoff of 16 s costs a task switch. Listeners hear every move (outages end by the clock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from adapters.graph.simulated import ManualClock


class VirtualClock(ManualClock):
    """A ``ManualClock`` (the simulated tenant's protocol) that is also the service's clock."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.listeners: list[Callable[[datetime], None]] = []
        self.slept = 0.0  # virtual seconds spent in sleep(): how long retries waited

    def __call__(self) -> datetime:
        return self.now()

    def advance(self, delta: timedelta | float) -> datetime:
        moved = super().advance(delta)
        for listener in list(self.listeners):
            listener(moved)
        return moved

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept += seconds
            self.advance(seconds)
        await asyncio.sleep(0)


class SteppedSeconds:
    """A monotonic clock (seconds) for rate gates and pacers that moves only when the code
    under test sleeps; ``waits`` lists every sleep asked for."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += max(seconds, 0.0)
