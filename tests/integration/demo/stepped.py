"""The demo on a clock that only the test moves, so no scenario depends on the machine's
speed: the service (a child process, through ``BREAKGLASS_TEST_CLOCK_FILE``) and the simulated
tenant read one :class:`FileClock` that stands still however slow the machine is, and jumps
only when the job is ready for it: to the window's end once the grant is verified, or to when
the strict tenant allows the removal once a kill has started the rollback. Every wait is for
an observable state of the job, bounded only as a guard against a hang.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.graph.simulated import SimulatedTenant
from bot.assembly import CLOCK_FILE_VAR
from bot.clock import FileClock
from bot.demo import Demo
from bot.demo_options import DemoOptions, Result

PIM_MINIMUM = timedelta(minutes=5)  # no removal earlier after an activation (strict tenant)
VERIFY_READ = "read_role_assignment"  # the read that follows the demo's role write
# Scenarios that end the job themselves; the others wait for the window's end.
ENDED_BY_THE_SCENARIO = ("kill", "injected")


class SteppedDemo(Demo):
    def __init__(self, options: DemoOptions, clock: FileClock) -> None:
        super().__init__(options)
        self.clock = clock  # type: ignore[assignment]  # the tenant only calls now()
        self.stepped = clock

    async def _scenario(
        self, http: aiohttp.ClientSession, sim: SimulatedTenant, job_id: str
    ) -> None:
        await super()._scenario(http, sim, job_id)
        if self.options.scenario == "early-kill":
            return  # stepped once the delayed removal is announced (below)
        ended = self.options.scenario in ENDED_BY_THE_SCENARIO or self._crashing("during_rollback")
        job = await self._ready(http, job_id, ended)
        if job["state"] == "active":
            self.stepped.set(datetime.fromisoformat(job["window_end"]))
        elif job["state"] == "rolling_back":
            self._allow_removal(job)

    async def _delayed_removal(
        self, http: aiohttp.ClientSession, job_id: str, result: Result
    ) -> None:
        await super()._delayed_removal(http, job_id, result)
        job = await self._job(http, job_id)
        if job["state"] == "rolling_back":
            self._allow_removal(job)

    async def _ready(self, http: aiohttp.ClientSession, job_id: str, ended: bool) -> dict[str, Any]:
        """The job once the scenario's part is done: ended by it, or its grant read back
        (jumping to the window's end before that read would make it find the grant gone)."""
        deadline = time.monotonic() + self.options.timeout
        while True:
            job = await self._job(http, job_id)  # answered by the (restarted) service
            read = VERIFY_READ in (job["last_tool_call"] or "")
            done = job["state"] != "active" if ended else read
            if done or job["resolved"] or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.05)

    def _allow_removal(self, job: dict[str, Any]) -> None:
        """Killed inside PIM's first five minutes of this frozen clock: move it to when the
        strict tenant allows the removal (five minutes after the activation)."""
        allowed = datetime.fromisoformat(job["window_start"]) + PIM_MINIMUM
        self.stepped.set(max(self.stepped.now(), allowed))


def stepped_demo(
    options: DemoOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SteppedDemo:
    clock = FileClock(tmp_path / "clock")
    clock.set(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setenv(CLOCK_FILE_VAR, str(clock.path))  # the service reads the same file
    return SteppedDemo(options, clock)
