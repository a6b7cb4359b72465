"""Store tests run twice: on a SQLite file in tmp_path and on a fresh PostgreSQL schema.

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth, database ``test``).
Each test gets its own schema ``bg_test_<random>`` through ``search_path`` in the URL, so
parallel runs never meet; the schema is dropped afterwards. The PostgreSQL variant is skipped
only when nothing listens on the port; any other failure fails the test.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from adapters.store import SqlStore, sqlite_url
from engine.ports import ApprovalRecord, ChainRecord, JobUpdate, Revocation, TokenRecord

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def pg_listening() -> str | None:
    """None when the server accepts TCP connections, else why not."""
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def pg_admin(statement: LiteralString, schema: str) -> None:
    query = sql.SQL(statement).format(sql.Identifier(schema))
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="test", autocommit=True
    ) as conn:
        conn.execute(query)


@pytest.fixture(scope="session")
def pg_reachable() -> None:
    why = pg_listening()
    if why is not None:
        pytest.skip(
            f"!!! PostgreSQL at {PG_HOST}:{PG_PORT} is UNREACHABLE ({why}): "
            "the PostgreSQL variant of the store tests did NOT run !!!"
        )


@contextmanager
def pg_schema(prefix: str, options: str = "") -> Iterator[str]:
    """A PostgreSQL schema of its own (``prefix`` and random hex), dropped afterwards; its URL
    (``options``: more ``-c`` settings, URL-encoded, for the session)."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    pg_admin("CREATE SCHEMA {}", schema)
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}{options}"
    finally:
        pg_admin("DROP SCHEMA {} CASCADE", schema)


@pytest.fixture
def pg_url(pg_reachable: None) -> Iterator[str]:
    # An odd session time zone proves datetimes come back as UTC whatever the server says.
    with pg_schema("bg_test", "%20-ctimezone%3DPacific/Chatham") as url:
        yield url


# The backends a store URL fixture is parametrized over (``url_of`` builds the URL).
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def url_of(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a store on the backend ``request.param`` names: a SQLite file in
    ``tmp_path``, or the test's own PostgreSQL schema (the ``pg_url`` fixture)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    value = request.getfixturevalue("pg_url")
    assert isinstance(value, str)
    return value


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_of(request, tmp_path)


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(url)
    try:
        yield opened
    finally:
        await opened.close()


# Record builders: small, explicit, one per record type.


def approval(job_id: str, n: int, at: datetime = T0) -> ApprovalRecord:
    return ApprovalRecord(
        job_id=job_id,
        approver=f"principal-{n}",
        chat_identity=f"slack:U{n}",
        decision="approve",
        plan_hash_b64u="p" * 43,
        at=at,
        receipt_id=f"{job_id}-approval-{n}",
    )


def token(job_id: str, jti: str, kind: str = "agent") -> TokenRecord:
    claims = {"jti": jti, "mission_id": job_id, "exp": 1_740_000_000, "scope": ["tool:execute"]}
    return TokenRecord(jti, job_id, kind, claims, T0, T0 + timedelta(minutes=30))


def revocation(jti: str, job_id: str, at: datetime = T0) -> Revocation:
    return Revocation(jti, job_id, at, {"payload": {"jti": jti}, "signature_b64u": "s" * 86})


def link(job_id: str, seq: int, signed: bool = True) -> ChainRecord:
    envelope = {"payload_hash_b64u": f"h{seq}", "signer_did": "did:key:z6Mk"} if signed else None
    return ChainRecord(job_id, seq, {"event_type": f"e{seq}", "seq": seq}, envelope)


def new_job(job_id: str = "job-1", **children: Any) -> JobUpdate:
    return JobUpdate(job_id, 0, "planned", {"job_id": job_id, "step": 0}, **children)


def step(job_id: str, version: int, **children: Any) -> JobUpdate:
    """The transition from ``version``; its document names the version it came from."""
    doc = {"job_id": job_id, "step": version}
    return JobUpdate(job_id, version, f"state-{version}", doc, **children)
