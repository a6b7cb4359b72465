"""Job leases and the store's housekeeping: compare-and-set on one row per job.

A lease is taken when it is free, expired, or already ours, in one INSERT ... ON CONFLICT
DO UPDATE ... WHERE statement: on PostgreSQL the row lock makes two replicas meet there and
exactly one of them wins; on SQLite ``BEGIN IMMEDIATE`` serialises writers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, delete, func, or_, select, update

from adapters.store.dialect import insert_for
from adapters.store.models import IDEMPOTENCY, JOBS, LEASES


def acquire(conn: Connection, job_id: str, owner: str, until: datetime, now: datetime) -> bool:
    """Take or renew the lease of ``job_id`` for ``owner`` until ``until``; False when another
    owner holds it past ``now``."""
    stmt = insert_for(conn, LEASES)
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id"],
        set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
        where=or_(LEASES.c.owner == owner, LEASES.c.expires_at <= now),
    )
    row = {"job_id": job_id, "owner": owner, "expires_at": until}
    return conn.execute(stmt.returning(LEASES.c.job_id), row).first() is not None


def renew(conn: Connection, job_ids: Collection[str], owner: str, until: datetime) -> set[str]:
    """Extend to ``until`` each of ``job_ids``' leases ``owner`` still holds, in one statement;
    the ids renewed (a lease another replica took over, or one gone, is not among them)."""
    stmt = update(LEASES).where(LEASES.c.job_id.in_(list(job_ids)), LEASES.c.owner == owner)
    renewed = conn.execute(stmt.values(expires_at=until).returning(LEASES.c.job_id))
    return {row.job_id for row in renewed}


def release(conn: Connection, job_id: str, owner: str) -> bool:
    """Give the lease up (only ours); True when we held it."""
    gone = conn.execute(delete(LEASES).where(LEASES.c.job_id == job_id, LEASES.c.owner == owner))
    return gone.rowcount == 1


def reassign(conn: Connection, owner: str, to: str, until: datetime) -> set[str]:
    """Hand every lease of ``owner`` to ``to`` until ``until``, in one statement; the ids."""
    stmt = update(LEASES).where(LEASES.c.owner == owner).values(owner=to, expires_at=until)
    return {row.job_id for row in conn.execute(stmt.returning(LEASES.c.job_id))}


def holders(conn: Connection, now: datetime) -> dict[str, str]:
    """Every live lease: job id → owner."""
    query = select(LEASES.c.job_id, LEASES.c.owner).where(LEASES.c.expires_at > now)
    return {row.job_id: row.owner for row in conn.execute(query)}


def count_jobs(conn: Connection) -> dict[str, int]:
    """Jobs by state, counted by the database (one GROUP BY, no documents read)."""
    query = select(JOBS.c.state, func.count()).group_by(JOBS.c.state)
    return {state: int(n) for state, n in conn.execute(query)}


def purge_keys(conn: Connection, before: datetime) -> int:
    """Forget idempotency keys created before ``before`` (their replay window is over)."""
    return conn.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < before)).rowcount
