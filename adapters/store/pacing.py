"""Pacing slots shared by replicas: one row per bucket holds when its next request may leave.

A reservation reads the row with ``FOR UPDATE`` and moves it on by one interval in the same
transaction: on PostgreSQL the row lock makes concurrent replicas queue there and each gets
its own slot; on SQLite ``BEGIN IMMEDIATE`` serialises writers (and ``FOR UPDATE`` is not
emitted)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from adapters.store.dialect import insert_new
from adapters.store.models import PACING

# A bucket booked further ahead than this was booked on a clock that has since been set back
# (or by callers long gone): it starts afresh at ``now`` rather than hold every request back.
HORIZON = timedelta(minutes=10)


def reserve(conn: Connection, bucket: str, interval: timedelta, now: datetime) -> datetime:
    """The start of the first free slot of ``bucket`` at or after ``now``; the next one is
    ``interval`` after it. Slots booked beyond ``HORIZON`` are forgotten."""
    insert_new(conn, PACING, {"bucket": bucket, "next_at": now})  # the first use of a bucket
    query = select(PACING.c.next_at).where(PACING.c.bucket == bucket).with_for_update()
    next_at: datetime = conn.execute(query).scalar_one()
    start = now if next_at - now > HORIZON else max(next_at, now)
    conn.execute(update(PACING).where(PACING.c.bucket == bucket).values(next_at=start + interval))
    return start
