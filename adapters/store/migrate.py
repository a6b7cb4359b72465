"""Alembic, run from code: the migration scripts ship inside this package.

``upgrade`` runs on a connection that is already inside our transaction, so the whole
upgrade commits or rolls back as one. Concurrent starts are safe: SQLite's ``BEGIN
IMMEDIATE`` and a PostgreSQL advisory lock make a second replica wait, then find the schema
at head and do nothing.

A new revision: ``alembic.command.revision(alembic_config(), message=..., autogenerate=True)``
with ``config.attributes["connection"]`` set to a connection to a database at head.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

# Any constant will do; it only has to be the same in every replica.
PG_MIGRATION_LOCK = 0x6267_6D69  # "bgmi"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files(__package__) / "migrations"))
    return config


def upgrade(conn: Connection) -> None:
    """Bring the schema to head inside the caller's transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
