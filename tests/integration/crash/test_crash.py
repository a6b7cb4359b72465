"""SIGKILL the service at several points of a real job and restart it: it resumes, no grant
survives past the window plus a small grace, the chain verifies and the bundle is produced.

Runs the real ``breakglass serve`` as a child process against the simulated tenant (in this
process, so the tenant outlives the crash). Time is a :class:`FileClock` that only this test
moves: it stands still while the service is down and restarting however slow the machine
is, and jumps to the window's end only once the restarted service has resumed the job.
Every wait is for an observable state of the job, bounded only as a guard against a hang.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.graph.simulated import SimulatedTenant
from bot.assembly import CLOCK_FILE_VAR
from bot.clock import FileClock
from bot.demo import CRASH_POINTS, Demo, DemoOptions

GRACE = timedelta(seconds=30)  # virtual seconds: a tick or two after the window
PIM_MINIMUM = timedelta(minutes=5)  # no removal earlier after an activation (strict tenant)


class SteppedDemo(Demo):
    """The demo's crash scenario on a clock that moves only when the job is ready for it."""

    def __init__(self, options: DemoOptions, clock: FileClock) -> None:
        super().__init__(options)
        self.clock = clock  # type: ignore[assignment]  # the tenant only calls now()
        self.stepped = clock

    async def _scenario(
        self, http: aiohttp.ClientSession, sim: SimulatedTenant, job_id: str
    ) -> None:
        await super()._scenario(http, sim, job_id)
        job = await self._job(http, job_id)  # answered by the restarted, resumed service
        if job["state"] == "active":
            self.stepped.set(datetime.fromisoformat(job["window_end"]))
        elif job["state"] == "rolling_back" and job["window_start"]:
            # Killed inside PIM's first five minutes: the strict tenant allows the removal
            # five minutes after the activation (this frozen clock's window start).
            allowed = datetime.fromisoformat(job["window_start"]) + PIM_MINIMUM
            self.stepped.set(max(self.stepped.now(), allowed))


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_crash_and_restart(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FileClock(tmp_path / "clock")
    clock.set(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setenv(CLOCK_FILE_VAR, str(clock.path))  # the service reads the same file
    options = DemoOptions(scenario="crash", crash_at=point, json_output=True, home=tmp_path)
    result = await SteppedDemo(options, clock).run()
    assert result.bundle_valid, result.reason_codes
    assert result.still_privileged == []
    assert result.rollback_verified
    assert result.ok, result.to_json()
    assert result.window_end is not None
    assert result.ended_at is not None
    assert (
        datetime.fromisoformat(result.ended_at) <= datetime.fromisoformat(result.window_end) + GRACE
    )
    log = (tmp_path / "service.log").read_text()
    assert "Traceback" not in log
