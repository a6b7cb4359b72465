"""Alembic environment: runs on the connection ``adapters.store.migrate`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from adapters.store.models import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through adapters.store.migrate, which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
