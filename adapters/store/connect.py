"""Engines: which databases we accept, how each is tuned, and errors without secrets."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.exc import ArgumentError, DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from engine.errors import ConfigError, StoreError

SQLITE_BUSY_TIMEOUT_MS = 10_000  # another process (the CLI) may hold the write lock briefly
PG_POOL_SIZE = 4  # threads and pooled connections per PostgreSQL store
PG_CONNECT_TIMEOUT_S = 10
# A pooled PostgreSQL connection idle this long is pinged before use: the database may have
# restarted meanwhile. One used more recently is not (see ``_ping_when_idle``).
PG_PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "breakglass_idle_since"


@dataclass(frozen=True)
class Connected:
    """An engine and the executor its blocking calls run on."""

    engine: Engine
    executor: ThreadPoolExecutor
    safe_url: str  # the URL with its password masked, for messages
    # SQLite: the executor's one thread keeps its connection between transactions (a pool
    # checkout and check-in per transaction cost more than the statements; PostgreSQL keeps
    # its pool, whose checkout pings a connection that sat idle: the database may have
    # restarted).
    keep_connection: bool = False


def sqlite_url(home: pathlib.Path) -> str:
    """The URL of the default database, ``<home>/breakglass.db`` (home is $BREAKGLASS_HOME)."""
    return URL.create("sqlite+pysqlite", database=str(home / "breakglass.db")).render_as_string()


def parse_url(url: str) -> URL:
    """A SQLAlchemy URL for SQLite or PostgreSQL (psycopg 3); anything else is a ConfigError."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # ``from None``: SQLAlchemy's message quotes the whole URL, password included.
        raise ConfigError("database URL is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}")
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise ConfigError("PostgreSQL needs the psycopg (3) driver: postgresql+psycopg://")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError("SQLite needs a database file, not an in-memory database")
    return parsed


def safe_url(url: URL) -> str:
    """``url`` for lines people read: no password, and no query values (libpq takes
    ``?password=`` and ``?sslpassword=`` there too)."""
    shown = url.set(query={}).render_as_string(hide_password=True)
    return shown + ("?" + "&".join(f"{k}=***" for k in url.query) if url.query else "")


def connect(url: str) -> Connected:
    parsed = parse_url(url)
    safe = safe_url(parsed)
    try:
        if parsed.get_backend_name() == "sqlite":
            return Connected(_sqlite_engine(parsed), _executor(1, "sqlite"), safe, True)
        return Connected(_pg_engine(parsed), _executor(PG_POOL_SIZE, "pg"), safe)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot set up database {safe}: {type(exc).__name__}") from exc


def _executor(threads: int, name: str) -> ThreadPoolExecutor:
    # One thread for SQLite: writes serialise here instead of queueing on the file lock.
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"store-{name}")


def _sqlite_engine(url: URL) -> Engine:
    if url.database:
        _create_owner_only(pathlib.Path(url.database))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    # Where the dialect begins, not a "begin" event: any connection event listener makes
    # every statement walk SQLAlchemy's event hooks, a cost on the gateway's hot path.
    engine.dialect.do_begin = _sqlite_begin  # type: ignore[method-assign, assignment]
    return engine


def _create_owner_only(path: pathlib.Path) -> None:
    """A new database file is readable by its owner only, wherever it lives: it holds jobs,
    tokens' claims and message references. SQLite gives its -wal and -shm files the mode of
    the database file. An existing file keeps the mode its owner chose."""
    # OSError: it exists; or SQLite names what is wrong when it opens the file itself.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Take BEGIN away from the sqlite3 module (see _sqlite_begin), then tune the connection.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: approvals survive
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: DBAPICursor) -> None:
    """Put the file in WAL mode (persistent), waiting out other processes doing the same.

    On a new file the switch needs an exclusive lock, and SQLite refuses it at once, without
    the busy handler, while another connection holds the file: so retry until the timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    mode = cursor.fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot use WAL journal mode here (got {mode!r})")


def _sqlite_begin(dbapi_conn: PoolProxiedConnection) -> None:
    # IMMEDIATE takes the write lock up front: a read-then-write transaction can never
    # fail half-way with SQLITE_BUSY, and SELECTs run inside the transaction too. A driver
    # error here is wrapped like any statement's (SQLAlchemy calls do_begin in its guard).
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
    finally:
        cursor.close()


def pg_connect_args(url: URL) -> dict[str, int]:
    """libpq settings of every connection to PostgreSQL, but those the URL's query sets.

    A server that vanished without a reset (a failover to another host, a dropped network
    path) otherwise holds a connection's statement until TCP gives up, some 15 minutes on
    Linux: its thread and connection stay taken while callers time out (``answers``). So
    TCP is asked to give up after 30 s of unanswered data, and to probe an idle connection
    (a statement waiting on the server) after 10 s (libpq's ``tcp_user_timeout`` and
    ``keepalives*`` parameters)."""
    wanted = {
        "connect_timeout": PG_CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,  # milliseconds
    }
    return {k: v for k, v in wanted.items() if k not in url.query}


def _pg_engine(url: URL) -> Engine:
    connect_args = pg_connect_args(url)
    engine = create_engine(url, connect_args=connect_args, pool_size=PG_POOL_SIZE, max_overflow=0)
    _ping_when_idle(engine)  # replicas outlive database restarts
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, for connections idle longer than ``PG_PING_AFTER_IDLE_S`` only.

    A busy replica checks a connection out for every transaction, and ``pool_pre_ping``'s
    round trip each time was ~6 % of a replica's busy samples under ``make load``. A ping
    that fails raises ``DisconnectionError``: the pool drops that connection and connects
    afresh (SQLAlchemy's documented recipe for custom pessimistic checks). A connection used
    within the last second that the database dropped fails its statement instead; SQLAlchemy
    then invalidates the pool, so the next transactions reconnect.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checking_out(
        dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PG_PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi)  # the pre-ping's own query, outside a transaction
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"idle connection lost: {type(exc).__name__}") from exc
