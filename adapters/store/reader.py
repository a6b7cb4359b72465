"""SQLite point reads on the caller's thread, for the gateway's revocation check.

The hop to the store's thread and back costs more than the read itself, the more so on a
busy machine. A WAL reader sees every committed transaction and never waits for the writer.
The store only reads here when none of its own transactions is queued or running, so the
answer is the one a read queued on its thread would get (read-your-writes kept); anything
unusual (a locked or missing file) answers None and the caller takes the usual path.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import bindparam, exists, select
from sqlalchemy.dialects import sqlite

from adapters.store.models import REVOCATIONS

READ_BUSY_TIMEOUT_MS = 50  # this blocks the event loop: give up early, the thread path waits
_IS_REVOKED = str(
    select(exists().where(REVOCATIONS.c.jti == bindparam("jti"))).compile(
        dialect=sqlite.dialect(paramstyle="named")
    )
)


class PointReader:
    def __init__(self, database: str) -> None:
        self._db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA query_only=ON")

    def is_revoked(self, jti: str) -> bool | None:
        try:
            # fetchall: the statement runs to its end and is reset, so no read snapshot is
            # left open to hold back the WAL checkpoint.
            rows = self._db.execute(_IS_REVOKED, {"jti": jti}).fetchall()
        except sqlite3.Error:
            return None
        return bool(rows and rows[0][0])

    def close(self) -> None:
        self._db.close()
