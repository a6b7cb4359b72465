"""The store fills as the rollback finds the job's principal deleted (docs/graph.md: its
role stays dormant in deleted items until the grant's schedule ends, and a restore brings it
back meanwhile). The rollback waits for that end with its receipts held in memory (ADR
0022); the notice to the channel is refused by the store too and must not stop the wait.
Once the disk has room, everything it did is chained and the job ends whole."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest

from engine import catalog
from tests.integration.faults.conftest import JOB, PEOPLE, FullEnv, active_job, until_ended
from tests.integration.faults.test_store_full import (
    ON_TIME,
    assert_ended_whole,
    given,
    holds,
    ticks,
    tool_receipts,
    window_end,
)


@pytest.mark.parametrize(
    "store_url",
    # SQLite: the notice's small write still fits the pages the file has (disk.py).
    [pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_a_deleted_principal_s_wait_goes_on_when_the_store_refuses_its_notice(
    full: FullEnv, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, "entra-role")
    before = len(await full.service.store.chain(JOB))
    end = (await full.service.load(JOB)).window_end_at()
    assert end is not None
    full.clock.advance(end - full.clock.now() - timedelta(minutes=2))
    full.sim.delete_user(PEOPLE["dave"])  # two minutes before the window's end
    await window_end(full)
    full.tools.tool, full.tools.before = catalog.REMOVE_ROLE, full.disk.fill

    await full.tick()  # the end is recorded; the disk fills as the rollback starts removing
    await ticks(full, ON_TIME)

    given(full.tools.before is None, "the disk filled as the removal left")
    removals = Counter(full.tools.sent)[catalog.REMOVE_ROLE]
    assert removals > 1, "the rollback did not wait and try again while the role was dormant"
    assert not holds(full, "entra-role")  # lapsed: nothing a restore could bring back
    untold = [r for r in caplog.records if "could not be told" in r.getMessage()]
    assert [r.levelno for r in untold] == [logging.WARNING]

    await full.disk.free()
    await until_ended(full)

    await assert_ended_whole(full, "entra-role")
    receipted = Counter(tool for tool, _ in await tool_receipts(full, before))
    assert receipted[catalog.REMOVE_ROLE] == removals  # every try chained, none repeated
