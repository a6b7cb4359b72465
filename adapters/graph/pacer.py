"""A pacer that spaces requests at least ``interval`` seconds apart.

Conditional Access endpoints allow one request per second per tenant and answer 429 without a
``Retry-After`` when that is exceeded; pacing ourselves avoids spending the retry budget on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
