"""SIGKILL the service at several points of a real job and restart it: it resumes, no grant
survives past the window plus a small grace, the chain verifies and the bundle is produced.

Runs the real ``breakglass serve`` as a child process against the simulated tenant (in this
process, so the tenant outlives the crash). Time is a :class:`FileClock` that only this test
moves: it stands still while the service is down and restarting however slow the machine
is, and jumps to the window's end only once the restarted service has resumed the job.
Every wait is for an observable state of the job, bounded only as a guard against a hang.
"""

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.demo_options import CRASH_POINTS, DemoOptions
from tests.integration.demo.stepped import stepped_demo

GRACE = timedelta(seconds=30)  # virtual seconds: a tick or two after the window


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_crash_and_restart(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = DemoOptions(scenario="crash", crash_at=point, json_output=True, home=tmp_path)
    result = await stepped_demo(options, tmp_path, monkeypatch).run()
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
