"""Chat message references and the delivery outbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.store import SqlStore
from engine.ports import MessageRef
from tests.integration.store.conftest import T0


async def test_message_ref_put_is_an_upsert(store: SqlStore) -> None:
    await store.put_message_ref(MessageRef("job-1", "slack", "status", {"ts": "1.0"}))
    await store.put_message_ref(MessageRef("job-1", "slack", "status", {"ts": "2.0"}))
    await store.put_message_ref(MessageRef("job-1", "teams", "approval:p1", {"id": "a"}))
    await store.put_message_ref(MessageRef("job-2", "slack", "status", {"ts": "9.0"}))
    assert await store.message_refs("job-1") == [
        MessageRef("job-1", "slack", "status", {"ts": "2.0"}),
        MessageRef("job-1", "teams", "approval:p1", {"id": "a"}),
    ]
    assert await store.message_refs("job-1", "teams") == [
        MessageRef("job-1", "teams", "approval:p1", {"id": "a"})
    ]
    assert await store.message_refs("job-3") == []


async def test_due_returns_oldest_first_per_platform(store: SqlStore) -> None:
    late = await store.enqueue("slack", "job-1", {"n": 2}, T0 + timedelta(minutes=5))
    early = await store.enqueue("slack", "job-1", {"n": 1}, T0)
    await store.enqueue("teams", "job-1", {"n": 3}, T0)
    assert [i.item_id for i in await store.due("slack", T0)] == [early]
    due = await store.due("slack", T0 + timedelta(minutes=5))
    assert [(i.item_id, i.payload, i.attempts) for i in due] == [
        (early, {"n": 1}, 0),
        (late, {"n": 2}, 0),
    ]
    assert due[0].not_before == T0
    assert [i.item_id for i in await store.due("slack", T0 + timedelta(minutes=5), limit=1)] == [
        early
    ]


async def test_postpone_counts_the_attempt_and_moves_the_time(store: SqlStore) -> None:
    item = await store.enqueue("slack", "job-1", {"n": 1}, T0)
    await store.postpone(item, T0 + timedelta(seconds=30))
    assert await store.due("slack", T0 + timedelta(seconds=29)) == []
    [again] = await store.due("slack", T0 + timedelta(seconds=30))
    assert (again.item_id, again.attempts, again.not_before) == (
        item,
        1,
        T0 + timedelta(seconds=30),
    )


async def test_delivered_items_are_never_due_again(store: SqlStore) -> None:
    item = await store.enqueue("slack", "job-1", {"n": 1}, T0)
    await store.delivered(item)
    await store.postpone(item, T0)  # a late failure report must not resurrect it
    assert await store.due("slack", T0 + timedelta(days=1)) == []
    await store.delivered(item)  # delivering twice is harmless


async def test_leased_items_are_not_due_until_the_lease_ends(store: SqlStore) -> None:
    item = await store.enqueue("slack", "job-1", {"n": 1}, T0)
    lease = T0 + timedelta(seconds=60)
    [leased] = await store.due("slack", T0, lease_until=lease)
    assert (leased.item_id, leased.not_before, leased.attempts) == (item, lease, 0)
    assert await store.due("slack", T0 + timedelta(seconds=59), lease_until=lease) == []
    # Never confirmed: it comes back once the lease is over.
    assert [i.item_id for i in await store.due("slack", lease)] == [item]


async def test_two_pollers_with_leases_take_disjoint_items(url: str) -> None:
    """Two replicas (PostgreSQL) or processes (SQLite) draining one outbox at once."""
    first, second = await SqlStore.open(url), await SqlStore.open(url)
    try:
        items = {await first.enqueue("slack", "job-1", {"n": n}, T0) for n in range(40)}
        lease = T0 + timedelta(minutes=1)
        taken: list[int] = []
        for _ in range(10):
            batches = await asyncio.gather(
                first.due("slack", T0, limit=3, lease_until=lease),
                second.due("slack", T0, limit=3, lease_until=lease),
            )
            taken += [item.item_id for batch in batches for item in batch]
        assert sorted(taken) == sorted(items)  # each item exactly once
    finally:
        await first.close()
        await second.close()
