"""A full disk under the store, made by the database itself, never by a mock of our code.

SQLite: the store's own connection may not grow its file (``PRAGMA max_page_count``, a
setting of the connection, not of the file: a second connection could not impose it), and
filler rows first take up the free pages. Each write that needs a page then fails with
SQLITE_FULL "database or disk is full", exactly as on a full disk. Like on a full disk, a
write that fits in the pages the file already has (a lease renewed in place) still succeeds.
Freeing raises the limit again, as deleting a large file would.

PostgreSQL: a trigger on every table of the store's schema raises SQLSTATE 53100
``disk_full`` with the server's own message (``tests/integration/ops/test_store_down.py``):
every write is refused, every read works.
"""

from __future__ import annotations

import re
from typing import Protocol

from sqlalchemy import Connection

from adapters.store import SqlStore
from engine.errors import StoreError
from tests.integration.ops.test_store_down import Disk

SQLITE_MAX_PAGES = 1_073_741_823  # SQLite's default max_page_count
FILLER = "test_disk_filler"
FIRST_FILLER_BYTES = 1 << 20
LAST_FILLER_BYTES = 8


class FullDisk(Protocol):
    async def fill(self) -> None: ...

    async def free(self) -> None: ...


class SqliteDisk:
    """The disk under a SQLite store. Runs on the store's own thread and connection (its
    one executor thread keeps one connection between transactions, ADR 0003)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def fill(self) -> None:
        await self.store._run(_create_filler)
        await self.store._run(_limit, None)
        size = FIRST_FILLER_BYTES
        while size >= LAST_FILLER_BYTES:  # the free pages, down to the last few bytes
            try:
                await self.store._run(_add_filler, size)
            except StoreError as exc:
                if "database or disk is full" not in str(exc):
                    raise  # not the full disk this models
                size //= 2

    async def free(self) -> None:
        await self.store._run(_limit, SQLITE_MAX_PAGES)


def _create_filler(conn: Connection) -> None:
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {FILLER} (b BLOB)")


def _limit(conn: Connection, pages: int | None) -> None:
    """No more pages than ``pages`` (None: than the file has now) for this connection."""
    if pages is None:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    conn.exec_driver_sql(f"PRAGMA max_page_count = {int(pages)}")


def _add_filler(conn: Connection, size: int) -> None:
    conn.exec_driver_sql(f"INSERT INTO {FILLER} (b) VALUES (zeroblob(?))", (size,))


class PostgresDisk:
    """The disk under a PostgreSQL store (its schema named in the URL's search_path)."""

    def __init__(self, url: str) -> None:
        schema = re.search(r"search_path%3D(\w+)", url)
        assert schema is not None, url
        self.disk = Disk(schema.group(1))
        self.full = False

    async def fill(self) -> None:
        if not self.full:
            self.disk.fill()
            self.full = True

    async def free(self) -> None:
        if self.full:
            self.disk.free()
            self.full = False
