"""Model exchanges: the exact request and response bytes of each model call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select

from adapters.store import codec
from adapters.store.dialect import insert_new
from adapters.store.models import EXCHANGES
from engine.errors import ConcurrentUpdate
from engine.ports import ModelExchange


def put(conn: Connection, ex: ModelExchange) -> None:
    """Store ``ex``; storing the very same exchange again is a no-op (a retried write)."""
    row = {
        "receipt_id": ex.receipt_id,
        "job_id": ex.job_id,
        "request_body": ex.request_body,
        "response_body": ex.response_body,
        "at": ex.at,
    }
    if insert_new(conn, EXCHANGES, row):
        return
    query = select(EXCHANGES).where(EXCHANGES.c.receipt_id == ex.receipt_id)
    if codec.exchange(conn.execute(query).one()) != ex:
        raise ConcurrentUpdate(f"receipt {ex.receipt_id} already has a different exchange")


def for_job(conn: Connection, job_id: str) -> list[ModelExchange]:
    query = select(EXCHANGES).where(EXCHANGES.c.job_id == job_id)
    query = query.order_by(EXCHANGES.c.at, EXCHANGES.c.receipt_id)
    return [codec.exchange(row) for row in conn.execute(query)]


def purge(conn: Connection, before: datetime) -> int:
    """Delete exchanges recorded before ``before``; the receipts keep their hashes."""
    return conn.execute(delete(EXCHANGES).where(EXCHANGES.c.at < before)).rowcount
