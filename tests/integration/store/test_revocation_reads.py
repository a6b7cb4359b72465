"""The revocation check the gateway makes before every call. On SQLite it reads on the
caller's thread when the store has nothing of its own queued; it must still see every
committed revocation, and one of its own still being written."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from adapters.store import SqlStore, sqlite_url
from tests.integration.store.conftest import T0, revocation


async def test_a_revocation_committed_by_another_process_is_seen(tmp_path: Path) -> None:
    gateway_side = await SqlStore.open(sqlite_url(tmp_path))
    cli_side = await SqlStore.open(sqlite_url(tmp_path))  # e.g. `breakglass token revoke`
    try:
        assert await gateway_side.is_revoked("jti-1") is False
        assert await cli_side.revoke(revocation("jti-1", "job-1", at=T0)) is True
        assert await gateway_side.is_revoked("jti-1") is True
        assert await gateway_side.is_revoked("jti-2") is False
    finally:
        await cli_side.close()
        await gateway_side.close()


async def test_a_revocation_still_being_written_by_this_store_is_waited_for(
    tmp_path: Path,
) -> None:
    """The write lock is held elsewhere, so this store's revocation waits in its thread: the
    check must queue behind it (as a read on that thread would), not read the old state."""
    store = await SqlStore.open(sqlite_url(tmp_path))
    other = sqlite3.connect(tmp_path / "breakglass.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        writing = asyncio.ensure_future(store.revoke(revocation("jti-1", "job-1", at=T0)))
        await asyncio.sleep(0)  # the revocation is submitted to the store's thread
        checking = asyncio.ensure_future(store.is_revoked("jti-1"))
        await asyncio.sleep(0)
        assert not checking.done()  # it queued behind the write instead of reading now
        other.execute("COMMIT")  # the lock goes; the revocation commits, then the check runs
        assert await writing is True
        assert await checking is True
    finally:
        other.close()
        await store.close()
