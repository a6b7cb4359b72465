"""Chat message references (upserted in place) and the delivery outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select, update

from adapters.store import codec
from adapters.store.dialect import upsert
from adapters.store.models import MESSAGE_REFS, OUTBOX
from engine.ports import JsonDoc, MessageRef, OutboxItem


def put_message_ref(conn: Connection, ref: MessageRef) -> None:
    row = {"job_id": ref.job_id, "platform": ref.platform, "kind": ref.kind}
    stmt = upsert(conn, MESSAGE_REFS, keys=list(row), replace=["ref"])
    conn.execute(stmt, {**row, "ref": codec.dump(ref.ref)})


def message_refs(conn: Connection, job_id: str, platform: str | None) -> list[MessageRef]:
    query = select(MESSAGE_REFS).where(MESSAGE_REFS.c.job_id == job_id)
    if platform is not None:
        query = query.where(MESSAGE_REFS.c.platform == platform)
    query = query.order_by(MESSAGE_REFS.c.platform, MESSAGE_REFS.c.kind)
    return [codec.message_ref(row) for row in conn.execute(query)]


def enqueue(conn: Connection, platform: str, job_id: str, payload: JsonDoc, at: datetime) -> int:
    row = {
        "platform": platform,
        "job_id": job_id,
        "payload": codec.dump(payload),
        "attempts": 0,
        "not_before": at,
        "delivered": False,
        "created_at": at,
    }
    item_id = conn.execute(OUTBOX.insert().returning(OUTBOX.c.item_id), row).scalar_one()
    assert isinstance(item_id, int)
    return item_id


def due(
    conn: Connection, platform: str, now: datetime, limit: int, lease_until: datetime | None
) -> list[OutboxItem]:
    """Undelivered items of ``platform`` whose time has come, oldest first; leased if asked."""
    query = (
        select(OUTBOX)
        .where(OUTBOX.c.platform == platform)
        .where(OUTBOX.c.delivered.is_(False))
        .where(OUTBOX.c.not_before <= now)
        .order_by(OUTBOX.c.not_before, OUTBOX.c.item_id)
        .limit(limit)
    )
    if lease_until is None:
        return [codec.outbox_item(row) for row in conn.execute(query)]
    return _lease(conn, query, lease_until)


def _lease(conn: Connection, query: Select[Any], until: datetime) -> list[OutboxItem]:
    # PostgreSQL: SKIP LOCKED gives replicas polling at the same moment disjoint items.
    # SQLite ignores FOR UPDATE; its BEGIN IMMEDIATE already serialises the pollers.
    rows = conn.execute(query.with_for_update(skip_locked=True))
    items = [codec.outbox_item(row) for row in rows]
    if items:
        ids = [item.item_id for item in items]
        conn.execute(update(OUTBOX).where(OUTBOX.c.item_id.in_(ids)).values(not_before=until))
    return [replace(item, not_before=until) for item in items]


def delivered(conn: Connection, item_id: int) -> None:
    conn.execute(update(OUTBOX).where(OUTBOX.c.item_id == item_id).values(delivered=True))


def postpone(conn: Connection, item_id: int, not_before: datetime) -> None:
    """Count a failed attempt and try again at ``not_before``; delivered items stay delivered."""
    stmt = (
        update(OUTBOX)
        .where(OUTBOX.c.item_id == item_id, OUTBOX.c.delivered.is_(False))
        .values(attempts=OUTBOX.c.attempts + 1, not_before=not_before)
    )
    conn.execute(stmt)
