"""The database stops answering (ADR 0024): an administrator's ``VACUUM FULL`` or migration
holds an exclusive lock on our tables, a server freezes, a network path drops packets
without a reset. No statement fails; each one waits, for as long as the lock is held.

Modelled with PostgreSQL's own lock: an administrator's transaction takes ``ACCESS
EXCLUSIVE`` on every table of the test's schema (what ``VACUUM FULL`` and most ``ALTER
TABLE`` take), so every statement of ours, reads included, waits on the server until it
ends. What must hold is the first law's: the window still ends on time (unrecorded, as for
a full disk: ADR 0021) and once the database answers again the job ends whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator

import psycopg
import pytest

from engine.errors import StoreError
from engine.job import ACTIVE, END_KILL, KILLED
from engine.lifecycle import Kill
from tests.integration.faults.conftest import JOB, FullEnv, active_job, until_ended
from tests.integration.faults.test_store_full import (
    CONTAIN,
    ON_TIME,
    TEMPLATES,
    assert_ended_whole,
    errors_naming,
    given,
    holds,
    ticks,
    window_end,
)
from tests.integration.store.conftest import PG_HOST, PG_PORT

# Short, so the test does not wait long; it only decides when a caller stops waiting on a
# statement that cannot end while the lock is held, never whether anything happens in time.
WAIT = 2.0
pytestmark = [
    pytest.mark.parametrize(
        "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
    pytest.mark.parametrize("answer_seconds", [WAIT]),
]


@contextlib.contextmanager
def locked(store_url: str) -> Iterator[None]:
    """Every table of the store's schema locked ACCESS EXCLUSIVE until the block ends."""
    found = re.search(r"search_path%3D(\w+)", store_url)
    assert found is not None, store_url
    schema = found.group(1)
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="test") as admin:
        tables = [
            f'{schema}."{name}"'
            for (name,) in admin.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        ]
        admin.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE".encode())
        try:
            yield
        finally:
            admin.rollback()


async def answering(env: FullEnv) -> None:
    """Once the lock is gone, the statements that waited on it end and the store answers
    again; until then a call may still be refused at once (the store is stalled)."""
    for _ in range(100):
        try:
            await env.service.store.load_job(JOB)
            return
        except StoreError:
            await asyncio.sleep(WAIT / 20)
    raise AssertionError("the store does not answer after the lock was released")


@pytest.mark.parametrize("template", TEMPLATES)
async def test_the_window_ends_on_time_while_the_database_does_not_answer(
    full: FullEnv, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, template)
    await full.tick()  # the job's lease is taken
    given(holds(full, template), "the job's write landed")
    await window_end(full)  # reads the job: before the lock
    with locked(full.store_url):
        await ticks(full, ON_TIME)

        assert not holds(full, template), "the grant outlived its window"
        assert CONTAIN[template] in full.tools.sent, "the window's end contained nothing"
        assert errors_naming(caplog, JOB), "no ERROR names the job whose end is unrecorded"
    await answering(full)
    await until_ended(full)
    await assert_ended_whole(full, template)


async def test_a_kill_while_the_database_does_not_answer_stops_everything_then_is_recorded(
    full: FullEnv,
) -> None:
    await active_job(full, "entra-role")
    await ticks(full, ON_TIME * 5)  # ten minutes in: PIM allows the removal
    given(holds(full, "entra-role"), "the role is granted")
    s = full.service
    with locked(full.store_url):
        with contextlib.suppress(StoreError):  # refused, or ended here and kept
            await s.command(JOB, Kill(s.actor("console:erin")), key="kill-erin-1")
        await full.settle()
        assert not holds(full, "entra-role"), "the role outlived the Kill"
    await answering(full)
    given((await s.load(JOB)).state == ACTIVE, "the Kill could not be recorded meanwhile")
    job = await until_ended(full)
    assert (job.state, job.end_reason) == (KILLED, END_KILL)
    await assert_ended_whole(full, "entra-role", KILLED)
