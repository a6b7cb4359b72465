"""Jobs: create, load, list, and the compare-and-set update with everything it carries."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta, timezone
from types import MappingProxyType

import pytest
from sqlalchemy import create_engine, select, text

from adapters.store import SqlStore
from adapters.store.models import JOBS
from engine.errors import ConcurrentUpdate, JobNotFound, StoreError
from engine.ports import JobUpdate
from tests.integration.store.conftest import T0, approval, link, new_job, revocation, step, token


async def everything(store: SqlStore, job_id: str = "job-1") -> tuple[object, ...]:
    """All a transition of ``job_id`` could have written, to compare before and after."""
    return (
        await store.load_job(job_id),
        await store.chain(job_id),
        await store.approvals(job_id),
        await store.tokens(job_id),
        await store.is_revoked("jti-new"),
        await store.idempotent_result("key-new"),
    )


def loaded_update(version: int) -> JobUpdate:
    """A transition that writes one of every kind of child record."""
    return step(
        "job-1",
        version,
        chain=[link("job-1", version)],
        approvals=[approval("job-1", 9)],
        tokens=[token("job-1", "jti-new")],
        revocations=[revocation("jti-new", "job-1")],
        idempotency_key="key-new",
        idempotency_result={"answer": 1},
    )


async def test_create_then_load(store: SqlStore) -> None:
    created = await store.create_job(
        new_job(chain=[link("job-1", 0)], approvals=[approval("job-1", 1)])
    )
    assert (created.version, created.state) == (1, "planned")
    assert await store.load_job("job-1") == created
    assert await store.chain("job-1") == [link("job-1", 0)]
    assert await store.approvals("job-1") == [approval("job-1", 1)]


async def test_create_duplicate_id_is_a_conflict(store: SqlStore) -> None:
    first = await store.create_job(new_job())
    with pytest.raises(ConcurrentUpdate):
        await store.create_job(replace(new_job(), document={"other": True}))
    assert await store.load_job("job-1") == first


async def test_create_needs_version_zero(store: SqlStore) -> None:
    with pytest.raises(StoreError, match="expected_version 0"):
        await store.create_job(step("job-1", 1))
    assert await store.list_jobs() == []


async def test_load_unknown_job(store: SqlStore) -> None:
    with pytest.raises(JobNotFound):
        await store.load_job("nope")


async def test_update_unknown_job(store: SqlStore) -> None:
    with pytest.raises(JobNotFound):
        await store.update_job(step("nope", 1))


async def test_update_writes_everything_and_bumps_version(store: SqlStore) -> None:
    await store.create_job(new_job())
    updated = await store.update_job(loaded_update(1))
    assert (updated.version, updated.state) == (2, "state-1")
    assert await store.load_job("job-1") == updated
    assert await store.chain("job-1") == [link("job-1", 1)]
    assert await store.approvals("job-1") == [approval("job-1", 9)]
    assert await store.tokens("job-1") == [token("job-1", "jti-new")]
    assert await store.revocation("jti-new") == revocation("jti-new", "job-1")
    assert await store.idempotent_result("key-new") == {"answer": 1}


async def test_stale_version_writes_nothing(store: SqlStore) -> None:
    await store.create_job(new_job())
    await store.update_job(step("job-1", 1))
    before = await everything(store)
    with pytest.raises(ConcurrentUpdate):
        await store.update_job(loaded_update(1))  # the job is at version 2 now
    assert await everything(store) == before


async def test_duplicate_chain_seq_rolls_back_the_whole_transition(store: SqlStore) -> None:
    await store.create_job(new_job(chain=[link("job-1", 0)]))
    before = await everything(store)
    with pytest.raises(ConcurrentUpdate):
        await store.update_job(replace(loaded_update(1), chain=[link("job-1", 0, signed=False)]))
    assert await everything(store) == before


async def test_reused_idempotency_key_rolls_back_the_whole_transition(store: SqlStore) -> None:
    await store.create_job(new_job())
    assert await store.claim_key("key-new", {"first": True}, T0)
    before = await everything(store)
    with pytest.raises(ConcurrentUpdate):
        await store.update_job(loaded_update(1))
    assert await everything(store) == before
    assert await store.idempotent_result("key-new") == {"first": True}


async def test_idempotency_key_without_result_reads_back_empty(store: SqlStore) -> None:
    await store.create_job(new_job(idempotency_key="k"))
    assert await store.idempotent_result("k") == {}


async def test_records_of_another_job_are_refused(store: SqlStore) -> None:
    await store.create_job(new_job())
    before = await everything(store)
    with pytest.raises(StoreError, match="job-2"):
        await store.update_job(step("job-1", 1, chain=[link("job-2", 0)]))
    assert await everything(store) == before


async def test_revocation_already_present_is_success(store: SqlStore) -> None:
    await store.create_job(new_job())
    assert await store.revoke(revocation("jti-new", "job-1", at=T0))
    later = revocation("jti-new", "job-1", at=T0 + timedelta(hours=1))
    await store.update_job(step("job-1", 1, revocations=[later]))
    assert await store.revocation("jti-new") == revocation("jti-new", "job-1", at=T0)
    assert (await store.load_job("job-1")).version == 2


async def test_two_tasks_racing_make_one_winner(store: SqlStore) -> None:
    await store.create_job(new_job())
    results = await asyncio.gather(
        store.update_job(step("job-1", 1, chain=[link("job-1", 0)])),
        store.update_job(step("job-1", 1, chain=[link("job-1", 0, signed=False)])),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert [type(r) for r in results if isinstance(r, BaseException)] == [ConcurrentUpdate]
    assert await store.load_job("job-1") == winners[0]
    assert len(await store.chain("job-1")) == 1


async def test_two_store_instances_racing_make_one_winner(url: str) -> None:
    """Two stores on one database: two replicas (PostgreSQL) or the bot and the CLI (SQLite)."""
    first, second = await SqlStore.open(url), await SqlStore.open(url)
    try:
        await first.create_job(new_job())
        for version in range(1, 21):
            results = await asyncio.gather(
                first.update_job(step("job-1", version, chain=[link("job-1", version)])),
                second.update_job(step("job-1", version, chain=[link("job-1", version)])),
                return_exceptions=True,
            )
            lost = [r for r in results if isinstance(r, ConcurrentUpdate)]
            assert len(lost) == 1, results
        assert (await second.load_job("job-1")).version == 21
        assert [r.seq for r in await first.chain("job-1")] == list(range(1, 21))
    finally:
        await first.close()
        await second.close()


async def test_list_jobs_by_state(store: SqlStore) -> None:
    for name in ("a", "b", "c"):
        await store.create_job(new_job(name))
    await store.update_job(step("b", 1))
    assert [j.job_id for j in await store.list_jobs()] == ["a", "b", "c"]
    assert [j.job_id for j in await store.list_jobs({"planned"})] == ["a", "c"]
    assert [j.job_id for j in await store.list_jobs(["state-1", "gone"])] == ["b"]
    assert await store.list_jobs([]) == []


async def test_list_changed_reads_only_the_jobs_whose_version_moved(store: SqlStore) -> None:
    for name in ("a", "b", "c"):
        await store.create_job(new_job(name))
    ids, changed = await store.list_changed({"planned"}, {})
    assert ids == ["a", "b", "c"]
    assert changed == [await store.load_job(name) for name in ids]

    await store.update_job(replace(step("b", 1), state="planned"))
    ids, changed = await store.list_changed({"planned"}, {"a": 1, "b": 1, "c": 1})
    assert ids == ["a", "b", "c"]
    assert changed == [await store.load_job("b")]
    assert changed[0].version == 2

    await store.update_job(step("c", 1))  # leaves the listed states
    ids, changed = await store.list_changed({"planned"}, {"a": 1, "b": 2})
    assert (ids, changed) == (["a", "b"], [])


async def test_tokens_round_trip(store: SqlStore) -> None:
    tokens = [token("job-1", "jti-a"), token("job-1", "jti-b", kind="rollback")]
    await store.create_job(new_job(tokens=tokens))
    assert await store.tokens("job-1") == tokens
    assert await store.tokens("other") == []


async def test_documents_round_trip_exactly(store: SqlStore) -> None:
    doc = {
        "z": 1,
        "a": [2**63, -(2**70), 0],
        "text": 'é 🚨 \u0000 \ud800 "quoted"',
        "nested": {"b": None, "a": True, "f": 1.5},
        "empty": {},
    }
    await store.create_job(replace(new_job(), document=MappingProxyType(doc)))
    loaded = (await store.load_job("job-1")).document
    assert loaded == doc
    assert list(loaded) == list(doc)
    assert list(loaded["nested"]) == ["b", "a", "f"]
    assert all(type(n) is int for n in loaded["a"])


async def test_nan_is_refused_and_nothing_written(store: SqlStore) -> None:
    with pytest.raises(StoreError, match="not JSON"):
        await store.create_job(replace(new_job(), document={"x": float("nan")}))
    assert await store.list_jobs() == []


async def test_datetimes_come_back_aware_utc(store: SqlStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = approval("job-1", 1, at=T0.astimezone(plus_two))
    await store.create_job(new_job(approvals=[local]))
    [stored] = await store.approvals("job-1")
    assert stored.at == T0
    assert stored.at.tzinfo is not None
    assert stored.at.utcoffset() == timedelta(0)


async def test_the_compare_and_set_stamps_updated_at_as_created_at_is(url: str) -> None:
    """The compare-and-set runs as prepared driver SQL (adapters.store.prepared): its
    timestamp must still go through the column type, into the same stored form."""
    at = T0.astimezone(timezone(timedelta(hours=2)))
    store = await SqlStore.open(url, clock=lambda: at)
    try:
        await store.create_job(new_job())
        await store.update_job(step("job-1", 1, chain=[link("job-1", 0), link("job-1", 1)]))
        assert [r.seq for r in await store.chain("job-1")] == [0, 1]
    finally:
        await store.close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT created_at, updated_at, version FROM jobs")).one()
            typed = conn.execute(select(JOBS.c.created_at, JOBS.c.updated_at)).one()
    finally:
        engine.dispose()
    assert raw[0] == raw[1]
    assert raw[2] == 2
    assert tuple(typed) == (T0, T0)


async def test_naive_datetime_is_refused_and_nothing_written(store: SqlStore) -> None:
    naive = approval("job-1", 1, at=T0.replace(tzinfo=None))
    with pytest.raises(StoreError, match="naive"):
        await store.create_job(new_job(approvals=[naive]))
    assert await store.list_jobs() == []


async def test_closed_store_refuses(url: str) -> None:
    store = await SqlStore.open(url)
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.load_job("job-1")
