"""Job parts: a job's WPC payloads and envelopes are stored once, its row names them, and the
document read back is the one written (key order included), old shape and new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from adapters.store import SqlStore, codec, migrate
from engine.errors import ConcurrentUpdate
from engine.job import Job
from engine.lifecycle import Extend
from engine.ports import ChainRecord, JobUpdate, JsonDoc
from tests.support.engine_sim import JobSim

WPC_MEMBERS = ("policy_envelope", "policies")


@pytest.fixture
def raw(url: str) -> Iterator[Engine]:
    """A plain engine on the test database, to read and write rows as they are."""
    engine = create_engine(url)
    yield engine
    engine.dispose()


def active_job(extended: bool = False) -> Job:
    """A real job: requested, approved by both (WPC published), perhaps extending."""
    sim = JobSim()
    sim.request()
    sim.approve_both()
    if extended:
        assert sim.job is not None
        sim.do(Extend(sim.job.requester, 30))
    assert sim.job is not None
    return sim.job


def row_document(raw: Engine, job_id: str) -> str:
    with raw.connect() as conn:
        query = text("SELECT document FROM jobs WHERE job_id = :j")
        return str(conn.execute(query, {"j": job_id}).scalar_one())


def part_count(raw: Engine) -> int:
    with raw.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM job_parts")).scalar_one())


def same(a: JsonDoc, b: JsonDoc) -> bool:
    """Equal as stored: the same JSON text, so key order and number types count too."""
    return codec.dump(a) == codec.dump(b)


async def test_a_receipt_rewrites_only_the_small_rest(store: SqlStore, raw: Engine) -> None:
    job = active_job()
    doc = job.to_json()
    inline = len(codec.dump(doc))
    await store.create_job(JobUpdate(job.job_id, 0, job.state, doc))
    for version in range(1, 4):  # receipts: the document changes, its WPC members do not
        doc = job.but(chain_length=job.chain_length + version).to_json()
        await store.update_job(JobUpdate(job.job_id, version, job.state, doc))
    row = row_document(raw, job.job_id)
    assert len(row) < inline / 3, (len(row), inline)
    assert '"$part"' in row
    assert codec.dump(job.plan.payload) not in row
    assert part_count(raw) == 2  # the plan's payload and its one signed envelope
    assert same((await store.load_job(job.job_id)).document, doc)


async def test_a_replica_reads_and_writes_what_another_stored(url: str, raw: Engine) -> None:
    job = active_job(extended=True)
    first, second = await SqlStore.open(url), await SqlStore.open(url)
    try:
        await first.create_job(JobUpdate(job.job_id, 0, job.state, job.to_json()))
        loaded = await second.load_job(job.job_id)  # nothing of it in this replica's memory
        assert same(loaded.document, job.to_json())
        await second.update_job(JobUpdate(job.job_id, 1, "active", loaded.document))
        with pytest.raises(ConcurrentUpdate):  # compare-and-set holds as before
            await first.update_job(JobUpdate(job.job_id, 1, "active", job.to_json()))
        assert same((await first.load_job(job.job_id)).document, job.to_json())
        assert part_count(raw) == 4  # each plan's payload and its signed envelope
    finally:
        await first.close()
        await second.close()


async def test_a_part_read_again_is_decoded_once(url: str) -> None:
    """Another replica moves a job on at every receipt, so a replica reads it again and
    again: its parts, which never change, are decoded once and shared by every read."""
    job = active_job()
    writer, reader = await SqlStore.open(url), await SqlStore.open(url)
    try:
        await writer.create_job(JobUpdate(job.job_id, 0, job.state, job.to_json()))
        first = (await reader.load_job(job.job_id)).document
        doc = job.but(chain_length=job.chain_length + 1).to_json()
        await writer.update_job(JobUpdate(job.job_id, 1, job.state, doc))
        second = (await reader.load_job(job.job_id)).document
        assert second["policy_envelope"] is first["policy_envelope"]
        assert second["plan"]["payload"] is first["plan"]["payload"]
        assert second["chain_length"] == first["chain_length"] + 1
        assert same(second, doc)
    finally:
        await writer.close()
        await reader.close()


async def test_a_write_rolled_back_leaves_no_part_to_count_on(url: str) -> None:
    """A part inserted by a write that then failed was rolled back with it: the store must
    not take it as stored, or its next write would name a part nobody holds."""
    job = active_job()
    extension = active_job(extended=True).extension
    store = await SqlStore.open(url)
    try:
        await store.create_job(JobUpdate(job.job_id, 0, job.state, job.to_json(), chain=[link(0)]))
        new_doc = replace(job, extension=extension).to_json()
        with pytest.raises(ConcurrentUpdate):  # the chain seq is taken: all rolled back
            await store.update_job(JobUpdate(job.job_id, 1, job.state, new_doc, chain=[link(0)]))
        await store.update_job(JobUpdate(job.job_id, 1, job.state, new_doc))
        fresh = await SqlStore.open(url)  # reads the parts from the database, not memory
        try:
            assert same((await fresh.load_job(job.job_id)).document, new_doc)
        finally:
            await fresh.close()
    finally:
        await store.close()


def link(seq: int) -> ChainRecord:
    return ChainRecord("job-0001", seq, {"event_type": "e", "seq": seq}, None)


async def test_documents_without_wpc_members_are_stored_as_they_are(
    store: SqlStore, raw: Engine
) -> None:
    doc = {"job_id": "job-1", "plan": {"payload": "not an object"}, "policies": [1, None]}
    await store.create_job(JobUpdate("job-1", 0, "planned", doc))
    assert row_document(raw, "job-1") == codec.dump(doc)
    assert part_count(raw) == 0
    assert (await store.load_job("job-1")).document == doc


def migrate_to(raw: Engine, revision: str, down: bool = False) -> None:
    config = migrate.alembic_config()
    with raw.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def insert_old_shape(raw: Engine, job: Job) -> str:
    """The job's row as revision 0003 stored it: the whole document, WPC members inline."""
    document = codec.dump(job.to_json())
    row = {"j": job.job_id, "s": job.state, "d": document, "t": "2026-11-29 12:00:00.000000"}
    with raw.begin() as conn:
        conn.execute(
            text("INSERT INTO jobs VALUES (:j, 1, :s, :d, :t, :t)"),
            row,
        )
    return document


async def test_a_database_at_0003_migrates_with_its_jobs_intact(url: str, raw: Engine) -> None:
    job = active_job(extended=True)
    migrate_to(raw, "0003")
    old = insert_old_shape(raw, job)
    store = await SqlStore.open(url)  # migrates to head
    try:
        loaded = await store.load_job(job.job_id)
        assert codec.dump(loaded.document) == old
        assert Job.from_json(loaded.document) == job
        later = job.but(chain_length=job.chain_length + 1).to_json()
        await store.update_job(JobUpdate(job.job_id, 1, job.state, later))  # its next write
        assert '"$part"' in row_document(raw, job.job_id)
        assert same((await store.load_job(job.job_id)).document, later)
        assert [j.job_id for j in await store.list_jobs()] == [job.job_id]
    finally:
        await store.close()


async def test_downgrade_puts_the_parts_back_inline(url: str, raw: Engine) -> None:
    job = active_job(extended=True)
    store = await SqlStore.open(url)
    try:
        await store.create_job(JobUpdate(job.job_id, 0, job.state, job.to_json()))
    finally:
        await store.close()
    migrate_to(raw, "0003", down=True)
    stored: dict[str, Any] = json.loads(row_document(raw, job.job_id))
    assert codec.dump(stored) == codec.dump(job.to_json())
    assert all(member in stored for member in WPC_MEMBERS)
