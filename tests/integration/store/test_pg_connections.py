"""PostgreSQL connections the database dropped (a restart, a failover, an administrator):
a connection that sat idle is pinged before use and replaced, so the store's next call
works; one used within the idle bound meets the loss, and the pool is renewed: a read or a
transaction (aborted by the server, so nothing of it was done) runs again on a new
connection, while the replay record's lone INSERT fails its one call with a clear
StoreError. Real server, real pool, backends really terminated."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest

from adapters.store import SqlStore, connect
from engine.errors import StoreError
from tests.integration.store.conftest import PG_HOST, PG_PORT, T0

pytestmark = pytest.mark.postgres
TERMINATE_WAIT_MS = 10_000  # pg_terminate_backend returns once the backend has ended


@pytest.fixture
async def named(pg_url: str) -> AsyncIterator[tuple[SqlStore, str]]:
    """A store whose connections carry an application name of their own, so that only
    they are terminated (other tests may share the server)."""
    name = f"bg_conn_{secrets.token_hex(4)}"
    store = await SqlStore.open(f"{pg_url}&application_name={name}")
    try:
        yield store, name
    finally:
        await store.close()


def terminate(name: str) -> int:
    """Terminate the server side of every connection named ``name``; how many there were."""
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="test", autocommit=True
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (TERMINATE_WAIT_MS, name),
        ).fetchall()
    return len(rows)


async def test_an_idle_connection_the_database_dropped_is_replaced_unseen(
    named: tuple[SqlStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, name = named
    monkeypatch.setattr(connect, "PG_PING_AFTER_IDLE_S", 0.0)  # every reuse counts as idle
    assert await store.claim_key("k-1", {"n": 1}, T0)
    assert await store.list_jobs() == []
    assert terminate(name) >= 1
    # Both kinds of call: one statement alone (autocommit) and a transaction.
    assert await store.idempotent_result("k-1") == {"n": 1}
    assert not await store.claim_key("k-1", {"n": 2}, T0)  # still a replay
    assert await store.list_jobs() == []


async def test_a_connection_used_just_before_is_replaced_for_a_read_not_for_a_lone_insert(
    named: tuple[SqlStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, name = named
    monkeypatch.setattr(connect, "PG_PING_AFTER_IDLE_S", 3600.0)  # nothing counts as idle
    assert await store.claim_key("k-1", {"n": 1}, T0)
    assert terminate(name) >= 1
    assert await store.idempotent_result("k-1") == {"n": 1}  # again, on a new connection
    assert terminate(name) >= 1
    with pytest.raises(StoreError) as failed:  # its answer may be lost after it committed
        await store.claim_key("k-2", {"n": 2}, T0)
    assert "claim_key" in str(failed.value)  # names what failed, no traceback
    assert await store.claim_key("k-2", {"n": 2}, T0)  # it never ran: recorded now


def _dsn_of(url: str) -> dict[str, str]:
    """The libpq parameters a store connection to ``url`` was made with."""
    connected = connect.connect(url)
    try:
        with connected.engine.connect() as conn:
            dsn = conn.connection.driver_connection.info.dsn  # type: ignore[union-attr]
    finally:
        connected.engine.dispose()
        connected.executor.shutdown()
    return dict(part.split("=", 1) for part in dsn.split())


def test_a_server_gone_without_a_reset_is_given_up_on_by_tcp(pg_url: str) -> None:
    """A failover to another host leaves our statements waiting on a peer that is gone:
    TCP gives up after 30 s of unanswered data and probes a connection quiet for 10 s
    (Linux alone would wait some 15 minutes). A URL's own setting wins."""
    made = _dsn_of(pg_url)
    assert (made["tcp_user_timeout"], made["keepalives"], made["keepalives_idle"]) == (
        "30000",
        "1",
        "10",
    )
    assert _dsn_of(f"{pg_url}&keepalives_idle=7")["keepalives_idle"] == "7"
