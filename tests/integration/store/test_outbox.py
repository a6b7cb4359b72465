"""Chat message references and the delivery outbox."""

from __future__ import annotations

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
