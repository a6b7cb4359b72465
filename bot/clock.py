"""Clocks for the service. Real time in production; the demo runs time faster so a
one-minute window passes in seconds, with both of its processes counting from one anchor
(so a restarted service agrees with the tenant about what time it is). Tests that must not
depend on the machine's speed use a :class:`FileClock`, which only the test moves."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.timeutil import parse_iso

log = logging.getLogger("breakglass.clock")

FILE_POLL_SECONDS = 0.05  # how often a FileClock sleeper looks whether the test moved time


class ScaledClock:
    def __init__(self, anchor: datetime, scale: float = 1.0) -> None:
        if anchor.tzinfo is None:
            raise ValueError("the anchor must be timezone-aware")
        self.anchor = anchor
        self.scale = scale

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        real = datetime.now(UTC)
        return self.anchor + (real - self.anchor) * self.scale

    def real_seconds(self, virtual_seconds: float) -> float:
        return virtual_seconds / self.scale

    async def sleep(self, virtual_seconds: float) -> None:
        """Wait ``virtual_seconds`` of this clock's time."""
        await asyncio.sleep(self.real_seconds(virtual_seconds))


class FileClock:
    """Time read from a file holding one ISO instant: it stands still until someone calls
    :meth:`set` or :meth:`advance`, in this process or another one (a restarted service
    and the test driving it share the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        return parse_iso(self.path.read_text().strip())

    def set(self, when: datetime) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(when.isoformat())
        os.replace(temporary, self.path)  # readers see the old instant or the new, never half

    def advance(self, delta: timedelta) -> datetime:
        when = self.now() + delta
        self.set(when)
        return when

    async def sleep(self, seconds: float) -> None:
        """Wait until this clock has moved ``seconds`` on, or as many real seconds have
        passed, whichever comes first: a test moves the clock past a wait (a delayed removal)
        instead of sitting it out, and a wait it does not move past still ends."""
        target = self.now() + timedelta(seconds=seconds)
        deadline = time.monotonic() + seconds
        # Another process may move the file: there is nothing to wait on but polling.
        while self.now() < target and (left := deadline - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(FILE_POLL_SECONDS, left))


def sleep_for(clock: Callable[[], datetime]) -> Callable[[float], Awaitable[None]]:
    """The sleep that agrees with ``clock``: seconds of its time, not of the wall's."""
    return clock.sleep if isinstance(clock, ScaledClock | FileClock) else asyncio.sleep


def system_clock() -> datetime:
    return datetime.now(UTC)


STEP_BACK_NOTICED = timedelta(seconds=1)  # less is jitter, not a step


class SteadyClock:
    """The system clock, but never behind what this process has counted since it last
    looked. A step back of the system clock (NTP correcting a clock that ran fast, a virtual
    machine restored from a snapshot) would stretch every open window by the step, and a CA
    exclusion ends only when we end it: the tenant sets it no expiry. A step forward is
    taken as it comes (windows end early: the safe side). Counting rests on the monotonic
    clock, which the system clock's steps do not move."""

    def __init__(
        self,
        wall: Callable[[], datetime] = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._last = wall()
        self._last_counted = monotonic()
        self._behind = timedelta(0)  # how far the system clock is behind, as last logged

    def __call__(self) -> datetime:
        wall, counted = self._wall(), self._monotonic()
        due = self._last + timedelta(seconds=counted - self._last_counted)
        now = max(wall, due)
        self._notice(due - wall)
        self._last, self._last_counted = now, counted
        return now

    def _notice(self, behind: timedelta) -> None:
        """One ERROR per step back, not one per reading."""
        if behind > self._behind + STEP_BACK_NOTICED:
            log.error(
                "the system clock stepped back %d s; this process keeps counting time from "
                "where it was, so windows end on time. Fix the host's clock (NTP): a restart "
                "now would take the wrong time",
                round(behind.total_seconds()),
            )
        self._behind = max(behind, timedelta(0))
