import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.graph.pacer import Pacer, SharedPacer
from adapters.store import SqlStore, sqlite_url
from tests.support.virtual_time import SteppedSeconds

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_requests_are_spaced_by_the_interval() -> None:
    time = SteppedSeconds(100.0)
    pacer = Pacer(1.0, clock=time, sleep=time.sleep)
    await pacer.wait()
    time.now += 0.25
    await pacer.wait()
    await pacer.wait()
    assert time.waits == [0.75, 1.0]


async def test_concurrent_callers_are_serialised() -> None:
    time = SteppedSeconds(100.0)
    pacer = Pacer(0.5, clock=time, sleep=time.sleep)
    await asyncio.gather(*(pacer.wait() for _ in range(4)))
    assert time.waits == [0.5, 0.5, 0.5]


async def test_a_shared_pacer_whose_store_is_gone_paces_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await SqlStore.open(sqlite_url(tmp_path))
    await store.close()  # every reservation now fails with StoreError
    time = SteppedSeconds(100.0)
    local = Pacer(1.0, clock=time, sleep=time.sleep)
    shared = SharedPacer(store, "ca", 1.0, local, clock=lambda: T0, sleep=time.sleep)
    with caplog.at_level(logging.WARNING):
        await shared.wait()
        await shared.wait()
    assert time.waits == [1.0]  # still paced, by the process alone
    assert "pacing locally" in caplog.text


async def test_a_shared_pacer_waits_for_its_slot(tmp_path: Path) -> None:
    time = SteppedSeconds(100.0)
    async with await SqlStore.open(sqlite_url(tmp_path)) as store:
        pacers = [
            SharedPacer(store, "ca", 0.5, Pacer(0.5), clock=lambda: T0, sleep=time.sleep)
            for _ in range(2)
        ]
        for pacer in pacers * 2:
            await pacer.wait()
    assert time.waits == [0.5, 1.0, 1.5]  # slots T0, +0.5, +1.0, +1.5 seen from T0
