"""Schema and connection: migrations, pragmas, durability, and errors without secrets."""

from __future__ import annotations

import asyncio
import sqlite3
import traceback
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, make_url, text

from adapters.store import SqlStore, migrate, sqlite_url
from adapters.store.connect import connect
from adapters.store.models import metadata
from engine.errors import ConcurrentUpdate, ConfigError, StoreError
from tests.integration.store.conftest import link, new_job

PASSWORD = "Sup3r-s3cret-pw"


@pytest.fixture
def plain_engine(store: SqlStore, url: str) -> Iterator[Engine]:
    """A second engine on the store's (migrated) database, for looking at the schema."""
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_migrations_ship_inside_the_package() -> None:
    root = resources.files("adapters.store") / "migrations"
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert (root / name).is_file(), name


def test_models_and_migrations_agree(plain_engine: Engine) -> None:
    with plain_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrating_again_is_a_no_op(plain_engine: Engine) -> None:
    with plain_engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        migrate.upgrade(conn)
        migrate.upgrade(conn)
        assert migrate.current_revision(conn) == migrate.head_revision() == "0004"
        assert set(inspect(conn).get_table_names()) == tables


def test_downgrade_then_upgrade_restores_the_schema(plain_engine: Engine) -> None:
    config = migrate.alembic_config()
    with plain_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(conn)
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


async def test_reopen_finds_the_data(url: str) -> None:
    first = await SqlStore.open(url)
    await first.create_job(new_job(chain=[link("job-1", 0)]))
    await first.close()
    second = await SqlStore.open(url)
    try:
        assert (await second.load_job("job-1")).version == 1
        assert await second.chain("job-1") == [link("job-1", 0)]
    finally:
        await second.close()


def test_sqlite_connections_use_wal_and_full_sync(tmp_path: Path) -> None:
    connected = connect(sqlite_url(tmp_path))
    try:
        with connected.engine.connect() as conn:
            assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert conn.scalar(text("PRAGMA synchronous")) == 2  # FULL
            assert conn.scalar(text("PRAGMA foreign_keys")) == 1
            assert conn.scalar(text("PRAGMA busy_timeout")) > 0
    finally:
        connected.engine.dispose()
        connected.executor.shutdown()


def test_sqlite_transactions_hold_the_write_lock_from_their_start(tmp_path: Path) -> None:
    connected = connect(sqlite_url(tmp_path))
    other = sqlite3.connect(tmp_path / "breakglass.db", timeout=0, isolation_level=None)
    try:
        with connected.engine.begin() as conn:
            conn.execute(text("SELECT 1"))  # a read only, yet no other writer may begin
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # committed: the lock is free again
        other.execute("ROLLBACK")
    finally:
        other.close()
        connected.engine.dispose()
        connected.executor.shutdown()


async def test_sqlite_store_keeps_its_one_connection_until_closed(tmp_path: Path) -> None:
    store = await SqlStore.open(sqlite_url(tmp_path))
    pool = store._engine.pool
    await store.create_job(new_job(chain=[link("job-1", 0)]))
    with pytest.raises(ConcurrentUpdate):  # a rolled-back transaction leaves it usable
        await store.create_job(new_job())
    assert (await store.load_job("job-1")).version == 1
    assert pool.checkedout() == 1  # type: ignore[attr-defined]
    await store.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_sqlite_file_is_left_in_wal_mode(tmp_path: Path) -> None:
    await (await SqlStore.open(sqlite_url(tmp_path))).close()
    with sqlite3.connect(tmp_path / "breakglass.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_url_points_into_home_whatever_its_name(tmp_path: Path) -> None:
    home = tmp_path / "odd ?name #1 100%"
    home.mkdir()
    assert make_url(sqlite_url(home)).database == str(home / "breakglass.db")
    await (await SqlStore.open(sqlite_url(home))).close()
    assert (home / "breakglass.db").is_file()


def chain_text(err: BaseException) -> str:
    """Everything a log would show of ``err``, its causes included."""
    return "".join(traceback.format_exception(err))


async def test_unreachable_postgres_is_a_store_error_without_password() -> None:
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(StoreError) as caught:
        await SqlStore.open(url)
    assert "127.0.0.1" in str(caught.value)
    assert PASSWORD not in chain_text(caught.value)


async def test_a_short_password_leaves_the_drivers_message_readable() -> None:
    # Masking every occurrence of the password "p" printed "***ort 1 failed".
    with pytest.raises(StoreError) as caught:
        await SqlStore.open("postgresql+psycopg://u:p@127.0.0.1:1/test?connect_timeout=2")
    assert 'connection to server at "127.0.0.1", port 1 failed' in str(caught.value)
    assert "***ort" not in str(caught.value)


async def test_a_driver_message_that_shows_the_password_is_withheld() -> None:
    # libpq quotes a bad option value, here spelt like the password.
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/test?sslmode={PASSWORD}"
    with pytest.raises(StoreError) as caught:
        await SqlStore.open(url)
    assert PASSWORD not in str(caught.value)
    assert "the driver's message is withheld: it contains the password" in str(caught.value)


async def test_unreachable_sqlite_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unable to open"):
        await SqlStore.open(sqlite_url(tmp_path / "no" / "such" / "dir"))


@pytest.mark.parametrize(
    "url",
    [
        f"not a url {PASSWORD}",
        f"postgresql+psycopg://u:{PASSWORD}@h:notaport/db",
        f"mysql://u:{PASSWORD}@h/db",
        f"postgresql+psycopg2://u:{PASSWORD}@h/db",
        "sqlite://",
    ],
)
async def test_bad_urls_are_config_errors_without_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await SqlStore.open(url)
    assert PASSWORD not in chain_text(caught.value)


async def test_replicas_starting_together_migrate_once(url: str) -> None:
    stores = await asyncio.gather(*(SqlStore.open(url) for _ in range(3)))
    try:
        await stores[0].create_job(new_job())
        assert (await stores[2].load_job("job-1")).version == 1
    finally:
        for store in stores:
            await store.close()


async def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # Wherever the URL points (not only inside the owner-only home), under any umask.
    path = tmp_path / "elsewhere.db"
    store = await SqlStore.open(f"sqlite+pysqlite:///{path}")
    try:
        await store.create_job(new_job("job-private"))
        modes = await asyncio.to_thread(_modes, tmp_path, "elsewhere.db")
        assert set(modes) >= {"elsewhere.db", "elsewhere.db-wal"}
        assert modes == dict.fromkeys(modes, 0o600)
    finally:
        await store.close()


def _modes(folder: Path, prefix: str) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir() if p.name.startswith(prefix)}
