"""A process that starts while the store refuses writes (its disk is full).

The replica's process dies during the outage (a crash, an OOM kill, a node drained) and its
supervisor starts it again before the disk has room. Everything a start writes is refused:
taking over its dead predecessor's leases, renewing them, publishing a job's policy. The
new process must still start, end each window on time (unrecorded, ADR 0021), run a
rollback its predecessor left half-done (its receipts held, ADR 0022), and once the disk has
room every job must end whole and verified (DESIGN §10).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import chain
from engine.job import ACTIVE, KILLED, RESOLVED, ROLLING_BACK
from engine.lifecycle import Kill
from tests.integration.faults.conftest import (
    JOB,
    TICK_SECONDS,
    FullEnv,
    active_job,
    die,
    started_again,
    until_ended,
)
from tests.integration.faults.test_store_full import (
    CONTAIN,
    ON_TIME,
    REMOVAL,
    TEMPLATES,
    assert_ended_whole,
    errors_naming,
    given,
    holds,
    ticks,
    window_end,
)


@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_process_started_on_a_full_disk_ends_the_window_on_time(
    full: FullEnv, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, template)
    await die(full)
    async with started_again(full) as again:
        await again.disk.fill()

        await again.service.resume()  # it starts: nothing it must write stops it
        given((await again.service.load(JOB)).state == ACTIVE, "the start recorded nothing")
        await window_end(again)
        await ticks(again, ON_TIME)

        assert not holds(again, template), "the grant outlived its window"
        assert CONTAIN[template] in again.tools.sent, "the window's end contained nothing"
        assert errors_naming(caplog, JOB), "no ERROR names the job whose end is unrecorded"

        await again.disk.free()
        await until_ended(again)
        await assert_ended_whole(again, template)


async def test_a_process_started_on_a_full_disk_runs_the_rollback_it_took_over(
    full: FullEnv,
) -> None:
    """Erin's Kill is recorded; the process dies before its rollback sent anything. The
    next starts while the store refuses writes: the role goes long before PIM's own end."""
    await active_job(full, "entra-role")
    await ticks(full, timedelta(minutes=10))  # PIM allows a removal from 5 minutes on
    s = full.service
    assert (await s.command(JOB, Kill(s.actor("console:erin")))).ok
    await die(full)  # before the rollback's task ran: nothing was sent
    given(REMOVAL["entra-role"] not in full.tools.sent, "the rollback had not run")
    given(holds(full, "entra-role"), "the role is granted")
    given((await s.load(JOB)).state == ROLLING_BACK, "the Kill is recorded")
    async with started_again(full) as again:
        await again.disk.fill()

        await again.service.resume()
        await again.settle()
        await ticks(again, ON_TIME)

        assert not holds(again, "entra-role"), "the role outlived its Kill"
        assert CONTAIN["entra-role"] in again.tools.sent

        await again.disk.free()
        job = await until_ended(again)
        assert job.state == KILLED
        await assert_ended_whole(again, "entra-role", KILLED)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_two_replicas_that_both_end_a_window_unrecorded_leave_one_whole_record(
    full: FullEnv, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    """While the store refuses writes, replica B cannot tell whether A, whose lease has
    expired in the store, is dead or only unable to renew: both run the end's steps. That
    must cost no more than a second ESCALATION line: the grant goes, and once the disk has
    room the job ends once, its chain without a doubled record, its bundle verified.
    PostgreSQL only: a full SQLite file still takes a lease rewritten in place, so A keeps
    renewing it and B never runs the steps."""
    await active_job(full, template)
    await full.tick()  # A takes the job's lease
    async with started_again(full, replica_id="replica-b") as b:
        await b.service.resume()  # A's lease is live: B leaves the job to A
        given(REMOVAL[template] not in b.tools.sent, "B left the job to A")
        for replica in (full, b):
            await replica.disk.fill()  # one disk for PostgreSQL; each connection's for SQLite
        await window_end(full)

        for _ in range(int(ON_TIME.total_seconds() // TICK_SECONDS)):
            await full.tick()
            await b.tick()
            full.clock.advance(TICK_SECONDS)

        assert not holds(full, template), "the grant outlived its window"
        given(REMOVAL[template] in b.tools.sent, "B ran the end's steps as well as A")
        assert len(errors_naming(caplog, "ESCALATION job " + JOB)) == 2, "one per replica"

        for replica in (full, b):
            await replica.disk.free()
        for _ in range(60):
            await full.tick()
            await b.tick()
            if (await full.service.load(JOB)).state in RESOLVED:
                break
            full.clock.advance(TICK_SECONDS)
        await assert_ended_whole(full, template)
        records = await full.service.store.chain(JOB)
        ids = [r.envelope["payload"].get("receipt_id") for r in records if r.envelope]
        ids = [i for i in ids if i is not None]
        assert len(ids) == len(set(ids)), "a record chained twice"
        assert [r.event["event_type"] for r in records].count(chain.RUN_END) == 1
