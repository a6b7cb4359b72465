"""The two statements SQLite and PostgreSQL spell differently: insert-or-ignore and upsert."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from adapters.store.prepared import prepared


def insert_for(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_new(conn: Connection, table: Table, row: Mapping[str, Any]) -> bool:
    """INSERT ``row`` unless its primary key exists; True when it was inserted.

    RETURNING tells which happened: drivers need not report a rowcount for INSERT.
    """
    statement = prepared(_insert_new(conn.dialect.name, table), conn.dialect)
    return statement.run(conn, row).first() is not None


@functools.cache
def _insert_new(dialect: str, table: Table) -> Insert:
    # Built once per table: a model call's receipt runs this, and building the statement
    # costs more than running it (the statement is immutable, so sharing it is safe).
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_nothing().returning(*table.primary_key.columns)


def upsert(conn: Connection, table: Table, keys: Sequence[str], replace: Sequence[str]) -> Insert:
    """INSERT, or on a conflict of ``keys`` overwrite the ``replace`` columns."""
    stmt = insert_for(conn, table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: stmt.excluded[name] for name in replace}
    )
