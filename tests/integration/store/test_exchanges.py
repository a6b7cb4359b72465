"""Model exchanges: exact bytes kept for auditors, purged by age."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.store import SqlStore
from engine.errors import ConcurrentUpdate
from engine.ports import ModelExchange
from tests.integration.store.conftest import T0


def exchange(receipt_id: str, minutes: int, job_id: str = "job-1") -> ModelExchange:
    body = bytes(range(256)) + receipt_id.encode()
    return ModelExchange(
        receipt_id, job_id, b'{"model":"m"}\x00', body, T0 + timedelta(minutes=minutes)
    )


async def test_exchanges_round_trip_bytes_in_time_order(store: SqlStore) -> None:
    for ex in (exchange("r-2", 2), exchange("r-1", 1), exchange("r-9", 0, job_id="job-2")):
        await store.put_exchange(ex)
    assert await store.exchanges("job-1") == [exchange("r-1", 1), exchange("r-2", 2)]
    assert await store.exchanges("job-3") == []


async def test_same_exchange_twice_is_a_no_op(store: SqlStore) -> None:
    await store.put_exchange(exchange("r-1", 1))
    await store.put_exchange(exchange("r-1", 1))
    assert await store.exchanges("job-1") == [exchange("r-1", 1)]


async def test_different_exchange_under_one_receipt_is_refused(store: SqlStore) -> None:
    await store.put_exchange(exchange("r-1", 1))
    with pytest.raises(ConcurrentUpdate):
        await store.put_exchange(exchange("r-1", 2))
    assert await store.exchanges("job-1") == [exchange("r-1", 1)]


async def test_purge_removes_only_older_exchanges(store: SqlStore) -> None:
    for minutes in (0, 1, 2):
        await store.put_exchange(exchange(f"r-{minutes}", minutes))
    assert await store.purge_exchanges(T0 + timedelta(minutes=2)) == 2
    assert await store.exchanges("job-1") == [exchange("r-2", 2)]
    assert await store.purge_exchanges(T0 + timedelta(minutes=2)) == 0
