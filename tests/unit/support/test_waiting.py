"""The one ``settle()`` the integration tests share (``tests/support/waiting.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.waiting import settle


class Work:
    """Tasks that may start more tasks, as a service's background work does."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.done: list[int] = []

    def start(self, depth: int, name: str = "work") -> None:
        self.tasks.add(asyncio.create_task(self._step(depth, name), name=name))

    async def _step(self, depth: int, name: str) -> None:
        await asyncio.sleep(0)
        self.done.append(depth)
        if depth > 0:
            self.start(depth - 1, name)


async def test_waits_for_work_that_starts_more_work() -> None:
    work = Work()
    work.start(5)
    await settle(pending=lambda: work.tasks)
    assert work.done == [5, 4, 3, 2, 1, 0]
    assert all(task.done() for task in work.tasks)


async def test_runs_the_drains_every_round() -> None:
    work, drained = Work(), []

    async def drain() -> None:
        drained.append(len(work.done))

    work.start(2)
    await settle(drain, pending=lambda: work.tasks)
    assert work.done == [2, 1, 0]
    assert drained[-1] == 3  # the last round found everything done


async def test_raises_naming_the_work_still_pending_past_the_bound() -> None:
    work = Work()
    work.start(1000, name="re-arming timer")
    with pytest.raises(AssertionError, match=r"still pending after 10 rounds.*re-arming timer"):
        await settle(pending=lambda: work.tasks, rounds=10)
    assert 10 <= len(work.done) < 100  # each round waited for work to end, not for time
    for task in work.tasks:
        task.cancel()
    await asyncio.gather(*work.tasks, return_exceptions=True)


async def test_failed_work_counts_as_settled() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await settle(pending=lambda: [task])
    assert isinstance(task.exception(), RuntimeError)
