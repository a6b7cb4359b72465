"""Begun step-up sign-ins in the store, on SQLite and PostgreSQL: any replica reads one, and
exactly one replica uses it however many race with the same callback."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.store import SqlStore
from tests.integration.store.conftest import T0

DOC = {"nonce": "n", "job_id": "job-1"}


async def test_a_sign_in_is_read_back_and_used_once(store: SqlStore) -> None:
    assert await store.sign_in("s1") is None
    await store.put_sign_in("s1", DOC, T0)
    assert await store.sign_in("s1") == (DOC, False)
    assert await store.claim_sign_in("s1")
    assert not await store.claim_sign_in("s1")  # a replayed callback
    assert await store.sign_in("s1") == (DOC, True)
    assert not await store.claim_sign_in("unknown")


async def test_racing_replicas_use_a_sign_in_once(url: str) -> None:
    stores = [await SqlStore.open(url) for _ in range(4)]
    try:
        await stores[0].put_sign_in("s1", DOC, T0)
        won = await asyncio.gather(*(s.claim_sign_in("s1") for s in stores))
        assert sum(won) == 1
    finally:
        for s in stores:
            await s.close()


async def test_old_sign_ins_are_purged(store: SqlStore) -> None:
    await store.put_sign_in("old", DOC, T0)
    await store.put_sign_in("new", DOC, T0 + timedelta(days=2))
    assert await store.purge_sign_ins(T0 + timedelta(days=1)) == 1
    assert await store.sign_in("old") is None
    assert await store.sign_in("new") == (DOC, False)
