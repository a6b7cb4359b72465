"""Grant claims: one live job per grant key (``engine.grants``), taken in the transaction of
the write that activates the job and dropped in the one that resolves it, so the rule holds
across replicas.

A claim is taken with INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL a second transaction
inserting the same key waits for the first to commit, then finds its row; on SQLite
``BEGIN IMMEDIATE`` serialises writers. Claiming a key the job already holds is success."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select

from adapters.store.dialect import insert_new
from adapters.store.models import GRANT_CLAIMS
from engine.errors import GrantClaimed


def claim(conn: Connection, grant_key: str, job_id: str, now: datetime) -> None:
    """Claim ``grant_key`` for ``job_id``; raises ``GrantClaimed`` naming the holder when
    another job has it (the caller's transaction then rolls back)."""
    row = {"grant_key": grant_key, "job_id": job_id, "created_at": now}
    if insert_new(conn, GRANT_CLAIMS, row):
        return
    holder = conn.scalar(select(GRANT_CLAIMS.c.job_id).where(GRANT_CLAIMS.c.grant_key == grant_key))
    if holder is not None and holder != job_id:
        raise GrantClaimed(str(holder))


def release(conn: Connection, job_id: str) -> None:
    """Drop every claim of ``job_id`` (it has resolved)."""
    conn.execute(delete(GRANT_CLAIMS).where(GRANT_CLAIMS.c.job_id == job_id))


def holders(conn: Connection) -> dict[str, str]:
    """Every claim: grant key -> job id."""
    query = select(GRANT_CLAIMS.c.grant_key, GRANT_CLAIMS.c.job_id)
    return {row.grant_key: row.job_id for row in conn.execute(query)}
