"""The demo waits for each step at least as long as the window takes at the chosen speed.

``breakglass demo --speed 2`` (inside the documented 1-600) gave up after 90 real seconds,
"timed out waiting for the end of the job (job is active)", though its five-minute window
takes 150. Time here is the test's: the demo's clock and sleep are replaced, nothing waits.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.demo import Demo
from bot.demo_options import DemoOptions


@pytest.mark.parametrize(("speed", "minutes"), [(2, 5), (1, 5), (30, 60), (600, 5)])
async def test_the_end_of_the_window_is_waited_for_at_any_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speed: float, minutes: int
) -> None:
    now = [0.0]  # real seconds since the wait began, as the demo sees them

    async def sleep(seconds: float) -> None:
        now[0] += max(seconds, 1.0)

    monkeypatch.setattr("bot.demo.time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr("bot.demo.asyncio", SimpleNamespace(sleep=sleep))
    options = DemoOptions(scale=speed, minutes=minutes, json_output=True, home=tmp_path)
    demo = Demo(options)
    window = minutes * 60 / speed  # the window's length in real seconds

    async def job(_http: Any, _job_id: str) -> dict[str, Any]:
        ended = now[0] >= window
        return {"state": "closed" if ended else "active", "resolved": ended, "receipts": []}

    monkeypatch.setattr(demo, "_job", job)
    no_http: Any = None  # the job is read through _job above
    done = await demo._until(no_http, "job-1", lambda j: j["resolved"], "the end of the job")
    assert done["state"] == "closed"
    assert now[0] >= window
