"""Begun step-up sign-ins: any replica may take the callback, and exactly one uses it.

``claim`` is one conditional UPDATE (``used`` false → true): on PostgreSQL the row lock makes
two replicas racing with one callback meet there, and only one sees a row changed."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from adapters.store.models import SIGN_INS
from engine.ports import JsonDoc


def put(conn: Connection, state: str, document: JsonDoc, started: datetime) -> None:
    row = {"state": state, "document": json.dumps(document), "started": started, "used": False}
    conn.execute(SIGN_INS.insert(), row)


def get(conn: Connection, state: str) -> tuple[JsonDoc, bool] | None:
    query = select(SIGN_INS.c.document, SIGN_INS.c.used).where(SIGN_INS.c.state == state)
    row = conn.execute(query).first()
    return None if row is None else (json.loads(row.document), bool(row.used))


def claim(conn: Connection, state: str) -> bool:
    stmt = (
        update(SIGN_INS)
        .where(SIGN_INS.c.state == state, SIGN_INS.c.used.is_(False))
        .values(used=True)
    )
    return conn.execute(stmt).rowcount == 1


def purge(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(SIGN_INS).where(SIGN_INS.c.started < before)).rowcount
