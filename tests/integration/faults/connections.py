"""The store's PostgreSQL connections lost for real: ``pg_terminate_backend`` on the server,
as a failover, an admin or a proxy dropping connections would leave them.

Only this test's connections are touched (other tests may share the server): every
connection a store of the test opens carries an ``application_name`` of its own, set in
the store's URL (libpq takes it from the URI's query; ``adapters.store.notify.conninfo``
keeps it for the revocation listener too), and the server's ``pg_stat_activity`` names
the backends by it. The revocation listener's backend is the one whose only statement is
``LISTEN``. ``pg_terminate_backend(pid, timeout)`` (PostgreSQL 14+) returns once the
backend has ended, so nothing here races the termination.

``Cut`` loses a connection at one precise point: just before a statement matching a text
runs, its own backend (and only it) is terminated, so that statement meets a dead
connection, whether the pool pinged it at checkout or not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine, event

from adapters.store.notify import CHANNEL
from tests.integration.faults.test_store_full import given
from tests.integration.store.conftest import PG_HOST, PG_PORT

TERMINATE_WAIT_MS = 10_000  # pg_terminate_backend waits this long at most for the backend
LISTEN = f"LISTEN {CHANNEL}"
_ADMIN: dict[str, Any] = {
    "host": PG_HOST,
    "port": PG_PORT,
    "user": "postgres",
    "dbname": "test",
    "autocommit": True,
}
_OURS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend' AND application_name = %s"
)


def app_name(prefix: str = "bg_conn") -> str:
    """A name no other test's connections carry."""
    return f"{prefix}_{secrets.token_hex(6)}"


def with_app_name(url: str, name: str) -> str:
    """``url`` (a store URL with a query) whose connections are named ``name``."""
    return f"{url}&application_name={name}"


def _admin(query: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(**_ADMIN) as conn:
        return list(conn.execute(query.encode(), args).fetchall())


def terminate(pid: int) -> bool:
    """End backend ``pid`` and wait until it has ended."""
    rows = _admin("SELECT pg_terminate_backend(%s, %s)", pid, TERMINATE_WAIT_MS)
    return bool(rows and rows[0][0])


@dataclass
class Backends:
    """The server's backends of the connections named ``name``."""

    name: str
    terminated: list[int] = field(default_factory=list)

    def rows(self) -> list[tuple[int, str]]:
        """(pid, last statement) of each."""
        return [(int(p), str(q)) for p, q in _admin(f"SELECT pid, query {_OURS}", self.name)]

    def pool(self) -> list[int]:
        return [pid for pid, query in self.rows() if query != LISTEN]

    def listener(self) -> list[int]:
        return [pid for pid, query in self.rows() if query == LISTEN]

    def terminate(self, pids: list[int]) -> list[int]:
        ended = [pid for pid in pids if terminate(pid)]
        self.terminated.extend(ended)
        return ended

    def terminate_pool(self) -> list[int]:
        """Every pooled connection of the store (not the listener's)."""
        return self.terminate(self.pool())

    def terminate_listener(self) -> int:
        """The revocation listener's connection; its pid."""
        pids = self.listener()
        given(len(pids) == 1, f"one LISTEN connection named {self.name}: {pids}")
        given(self.terminate(pids) == pids, "the listener's backend ended")
        return pids[0]

    def terminate_all(self) -> list[int]:
        return self.terminate([pid for pid, _ in self.rows()])


class Cut:
    """Terminate the store's own connection just before its next statement containing
    ``text`` runs (``times`` times), so that the statement meets a lost connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.text = ""
        self.times = 0
        self.cuts: list[str] = []  # the statements that met a terminated connection
        event.listen(engine, "before_cursor_execute", self._before)

    def arm(self, text: str, times: int = 1) -> None:
        self.text, self.times = text, times

    def _before(
        self, conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, _many: bool
    ) -> None:
        if self.times <= 0 or self.text not in statement:
            return
        self.times -= 1
        pid = conn.connection.dbapi_connection.info.backend_pid
        given(terminate(pid), f"backend {pid} ended")
        self.cuts.append(statement.split("\n", 1)[0][:80])

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
