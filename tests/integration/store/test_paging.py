"""Reads that scale with the page, not the table, on SQLite and PostgreSQL: jobs newest first
by keyset, and the pacing slots replicas share (one per interval, each to one caller)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from adapters.store import SqlStore
from adapters.store.pacing import HORIZON
from engine.errors import JobNotFound, StoreError
from tests.integration.store.conftest import T0, new_job

SECOND = timedelta(seconds=1)


def stamps(*offsets: int) -> Iterator[datetime]:
    return iter([T0 + n * SECOND for n in offsets])


async def ids(store: SqlStore, limit: int, before: str | None = None) -> list[str]:
    return [job.job_id for job in await store.page_jobs(limit, before)]


async def test_jobs_are_paged_newest_first_with_no_gap_or_repeat(url: str) -> None:
    # Ties on the creation time are broken by job id, so no job falls between two pages.
    created = stamps(0, 0, 1, 1, 1, 2, 3, 4)
    store = await SqlStore.open(url, clock=lambda: next(created))
    try:
        for n in range(7):
            await store.create_job(new_job(f"j{n}"))
        assert await ids(store, 3) == ["j6", "j5", "j4"]
        await store.create_job(new_job("j7"))  # a new job does not shift the pages after it
        assert await ids(store, 3, "j4") == ["j3", "j2", "j1"]
        assert await ids(store, 3, "j1") == ["j0"]
        assert await ids(store, 3, "j0") == []
        assert await ids(store, 100) == [f"j{n}" for n in range(7, -1, -1)]
    finally:
        await store.close()


async def test_a_page_after_an_unknown_job_or_of_no_size_is_refused(store: SqlStore) -> None:
    await store.create_job(new_job("j0"))
    with pytest.raises(JobNotFound):
        await store.page_jobs(10, "nope")
    with pytest.raises(StoreError, match="at least one"):
        await store.page_jobs(0)
    assert await ids(store, 10) == ["j0"]


async def test_pacing_slots_are_an_interval_apart_and_start_now_when_idle(
    store: SqlStore,
) -> None:
    assert await store.reserve_slot("ca", SECOND, T0) == T0
    assert await store.reserve_slot("ca", SECOND, T0) == T0 + SECOND
    assert await store.reserve_slot("ca", SECOND, T0 + SECOND / 2) == T0 + 2 * SECOND
    assert await store.reserve_slot("other", SECOND, T0) == T0  # buckets are independent
    idle = T0 + 10 * SECOND
    assert await store.reserve_slot("ca", SECOND, idle) == idle


async def test_a_bucket_booked_beyond_the_horizon_starts_afresh(store: SqlStore) -> None:
    ahead = T0 + HORIZON + SECOND  # booked by a clock that was then set back to T0
    assert await store.reserve_slot("ca", SECOND, ahead) == ahead
    assert await store.reserve_slot("ca", SECOND, T0) == T0  # not held back ten minutes
    assert await store.reserve_slot("ca", SECOND, T0) == T0 + SECOND
    within = T0 + HORIZON / 2
    assert await store.reserve_slot("other", SECOND, within) == within
    assert await store.reserve_slot("other", SECOND, T0) == within + SECOND  # a queue, kept


async def test_racing_replicas_each_get_their_own_slot(url: str) -> None:
    stores = [await SqlStore.open(url) for _ in range(4)]
    try:
        starts = await asyncio.gather(
            *(s.reserve_slot("ca", SECOND, T0) for s in stores for _ in range(3))
        )
        assert sorted(starts) == [T0 + n * SECOND for n in range(12)]
    finally:
        for s in stores:
            await s.close()
