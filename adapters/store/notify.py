"""Revocations announced to every replica: PostgreSQL ``NOTIFY`` in the revoking transaction
(delivered at commit, never for a rolled-back one), ``LISTEN`` on a connection of its own.

The notice is only a hint that makes the other replicas' fast paths and in-flight calls
catch up at once; the revocation table stays the authority every gateway call consults.
The channel is database-wide, so each notice names its schema and a listener takes only its
own schema's: jtis derive from job id and chain position, so two deployments (or test runs)
in one database can share a jti, and one's Kill must not refuse the other's tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import URL, Connection, text

from adapters.store.connect import pg_connect_args

log = logging.getLogger("breakglass.store")
CHANNEL = "breakglass_revocations"
RECONNECT_SECONDS = 1.0
_NOTIFY = text("SELECT pg_notify(:channel, current_schema() || ' ' || :payload)")

OnRevoked = Callable[[str, str], None]  # (job id, jti)


def announce(conn: Connection, job_id: str, jti: str) -> None:
    """Inside the revoking transaction: tell the listening replicas (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": f"{job_id} {jti}"})


def conninfo(url: URL) -> str:
    """The libpq URI of a SQLAlchemy ``postgresql+psycopg`` URL (its options kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def schema_of(conn: Connection) -> str:
    """The schema the store writes to (its URL's search_path), as ``announce`` names it."""
    return str(conn.scalar(text("SELECT current_schema()")) or "")


async def listen(
    url: URL, schema: str, on_revoked: OnRevoked, on_ready: Callable[[], None] | None = None
) -> None:
    """Call ``on_revoked`` for every revocation any replica commits in ``schema``, until
    cancelled; reconnects after a lost connection (the store check covers the gap), and
    calls ``on_ready`` each time it listens (again: what was announced meanwhile is lost)."""
    lost_at: float | None = None
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                make_conninfo(conninfo(url), **pg_connect_args(url)), autocommit=True
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                if lost_at is not None:
                    away = time.monotonic() - lost_at
                    log.info("revocation listener listening again after %.1f s", away)
                    lost_at = None
                if on_ready is not None:
                    on_ready()
                async for note in conn.notifies():
                    where, _, rest = note.payload.partition(" ")
                    if where == schema:  # another schema's jti may equal one of ours
                        job_id, _, jti = rest.partition(" ")
                        on_revoked(job_id, jti)
        except psycopg.Error as exc:
            if lost_at is None:  # once per loss, not at every try to reconnect
                lost_at = time.monotonic()
                log.warning("revocation listener lost its connection: %s", type(exc).__name__)
            await asyncio.sleep(RECONNECT_SECONDS)
