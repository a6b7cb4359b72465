"""Pacers that space requests at least ``interval`` seconds apart.

Conditional Access endpoints allow one request per second per tenant and answer 429 without a
``Retry-After`` when that is exceeded; pacing ourselves avoids spending the retry budget on it.
``Pacer`` paces one process; ``SharedPacer`` paces every replica of a deployment together,
through slots reserved in the store (N replicas would otherwise send N requests a second).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from engine.errors import StoreError
from engine.ports import PacingSlots

log = logging.getLogger(__name__)


class RequestPacer(Protocol):
    async def wait(self) -> None:
        """Return when the caller may send its request."""
        ...


class Pacer:
    """Serialises callers and lets each one start ``interval`` seconds after the previous."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            if self._last is not None:
                delay = self._last + self._interval - self._clock()
                if delay > 0:
                    await self._sleep(delay)
            self._last = self._clock()


def wall_clock() -> datetime:
    return datetime.now(UTC)


class SharedPacer:
    """Each caller reserves its own slot of ``bucket`` in the store and waits for it.

    ``clock`` is real UTC time, never a service clock that runs faster (the demo's): the
    tenant counts requests per real second. When the store cannot be reached the request is
    paced by ``fallback`` (this process only) rather than held back: a rollback must still go.
    """

    def __init__(
        self,
        slots: PacingSlots,
        bucket: str,
        interval: float,
        fallback: RequestPacer,
        *,
        clock: Callable[[], datetime] = wall_clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._slots = slots
        self._bucket = bucket
        self._interval = timedelta(seconds=interval)
        self._fallback = fallback
        self._clock = clock
        self._sleep = sleep

    async def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        try:
            start = await self._slots.reserve_slot(self._bucket, self._interval, now)
        except StoreError as exc:
            log.warning("shared pacing of %s unavailable (%s); pacing locally", self._bucket, exc)
            await self._fallback.wait()
            return
        delay = (start - now).total_seconds()
        if delay > 0:
            await self._sleep(delay)
