"""Revocation notices are heard by the replicas of their own schema only: the NOTIFY channel
is database-wide, and jtis derive from job id and chain position, so another deployment (or
test run) in the same database can revoke a jti equal to one of ours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from adapters.store import SqlStore
from engine.ports import Revocation
from tests.integration.store.conftest import pg_schema
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres
GUARD_SECONDS = 30.0  # against a hung test only


async def test_a_revocation_in_another_schema_is_not_heard(pg_url: str) -> None:
    ours = await SqlStore.open(pg_url)
    with pg_schema("bg_test_other") as other_url:
        theirs = await SqlStore.open(other_url)
        heard: list[tuple[str, str]] = []
        ready = asyncio.Event()
        watch = asyncio.ensure_future(
            ours.watch_revocations(lambda job, jti: heard.append((job, jti)), ready.set)
        )
        try:
            await asyncio.wait_for(ready.wait(), GUARD_SECONDS)
            now = datetime.now(UTC)
            # The same job id and jti in the other schema first, then one of ours: notices
            # arrive in commit order, so once ours is heard theirs would have been too.
            assert await theirs.revoke(Revocation("cst_same", "job-1", now, {}))
            assert await ours.revoke(Revocation("cst_ours", "job-1", now, {}))
            await eventually(lambda: ("job-1", "cst_ours") in heard, GUARD_SECONDS)
            assert heard == [("job-1", "cst_ours")]
            assert not await ours.is_revoked("cst_same")  # nothing of theirs reached ours
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await theirs.close()
            await ours.close()
