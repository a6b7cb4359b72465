"""A Kill the store refused outlives the process that kept it (ADR 0021, amended at stop 34).

The store's disk is full when Erin presses Kill: the window is ended here unrecorded and
the Kill is kept to be recorded later (``test_store_full.py``). Then the process dies, and
the disk is freed before a new process of the same replica starts. The new one must not
start the job's agent again for the rest of its window (an agent may send its planned write
again and re-grant what the unrecorded end removed); it records Erin's Kill first, and the
job ends killed, whole and verified.

The process "dies" (``die`` in the conftest): its tasks end and nothing is handed back or
recorded on the way, leases included. A graceful ``close`` would release the leases, which
no crash does, and would hide nothing more: the kept Kill is in memory either way, and only
the spool under the service's home survives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from bot.kept_commands import KeptCommands, spool_in
from engine import catalog
from engine.cst import TokenKind
from engine.job import ACTIVE, END_KILL, KILLED
from engine.lifecycle import Kill
from tests.integration.faults.conftest import (
    JOB,
    PEOPLE,
    FullEnv,
    active_job,
    die,
    started_again,
    until_ended,
)
from tests.integration.faults.test_store_full import (
    ON_TIME,
    assert_ended_whole,
    holds,
    kill_refused,
    ticks,
    tool_receipts,
)


def spool(env: FullEnv) -> KeptCommands:
    return KeptCommands(spool_in(env.home))


async def test_a_kill_kept_by_a_process_that_died_is_recorded_by_the_next(
    full: FullEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    await kill_refused(full)
    await ticks(full, ON_TIME)  # the outage goes on: the end ran here, unrecorded
    assert not holds(full, "entra-role")
    assert (await full.service.load(JOB)).state == ACTIVE  # the Kill is not recorded
    assert [type(c) for c in spool(full).load().values()] == [Kill]

    await die(full)
    await full.disk.free()
    async with started_again(full) as again:
        started: list[str] = []
        start = again.executor.start

        async def start_spied(job: Mapping[str, Any], token: str) -> None:
            started.append(str(job["job_id"]))
            await start(job, token)

        monkeypatch.setattr(again.executor, "start", start_spied)
        # The first read of the role after the restart: the agent's, or the rollback's?
        read_in: list[str] = []

        async def note_state() -> None:
            read_in.append((await again.service.store.load_job(JOB)).document["state"])

        again.tools.tool, again.tools.before = catalog.READ_ROLE, note_state

        await again.service.resume()
        await again.settle()

        assert started == [], "the agent of a killed job was started again"
        assert read_in[:1] != [ACTIVE], "the job's agent called the tenant after the restart"
        job = await until_ended(again)
        assert (job.state, job.end_reason) == (KILLED, END_KILL)
        assert job.ended_by == PEOPLE["erin"], job.ended_by
        await assert_ended_whole(again, "entra-role", KILLED)
        assert started == []
        assert read_in, "the rollback read the role back"  # so the check above was asked
        assert spool(again).load() == {}
        assert not spool_in(again.home).exists()


async def test_a_kept_kill_of_a_job_the_store_does_not_know_is_dropped_not_retried(
    full: FullEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """A spool left from another store (a home reused, a database restored) must not stop
    the tick of the jobs the store does know."""
    await active_job(full, "entra-role")
    await die(full)
    spool(full).save({"job-elsewhere": Kill(full.service.actor("console:erin"))})

    async with started_again(full) as again:
        await again.service.resume()  # its tick records what was kept: raises if it fails
        await again.service.tick()
        await again.settle()

        dropped = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.ERROR and "job-elsewhere" in r.getMessage()
        ]
        assert len(dropped) == 1, dropped
        assert spool(again).load() == {}
        assert (await again.service.load(JOB)).state == ACTIVE  # its own job goes on


async def test_the_agent_of_a_kept_kill_is_refused_by_the_next_process_before_it_resumes(
    full: FullEnv,
) -> None:
    """The next process takes calls as soon as it listens, before ``resume`` reaches the job:
    a token of the killed window must be refused then too (an agent outside may hold it)."""
    await kill_refused(full)
    job = await full.service.load(JOB)
    token = full.service.token_for(job, TokenKind.AGENT)
    read = job.plan.payload["metadata"]["breakglass"]["verify_action"]
    await die(full)
    await full.disk.free()
    async with started_again(full) as again:
        sent, chained = len(again.tools.sent), len(await again.service.store.chain(JOB))

        outcome = await again.gateway.call(JOB, token, read["tool"], read["arguments"])

        assert (outcome.allowed, outcome.reason) == (False, "TOKEN_INVALID")
        assert again.tools.sent[sent:] == []  # nothing reached the tenant
        assert await tool_receipts(again, chained) == [(read["tool"], "error")]  # recorded
