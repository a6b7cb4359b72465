"""The registry over real HTTP on loopback (port 0) with a real SqlStore on SQLite."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.store import SqlStore, sqlite_url
from bot.registry import add_registry_routes
from engine.did import Signer
from engine.wpc import build_wpc, sign_wpc
from tests.support.engine_sim import role_plan

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PUBLISHER = Signer.from_seed(b"publisher".ljust(32, b"."))
OUTSIDER = Signer.from_seed(b"outsider".ljust(32, b"."))
TENANT = "11111111-1111-1111-1111-111111111111"


def payload(job_id: str = "job-1") -> dict[str, Any]:
    request = role_plan(TENANT, justification="INC-42: MFA outage", ticket="INC-42", job_id=job_id)
    return build_wpc(request, PUBLISHER.did)


def envelope(job_id: str = "job-1", signer: Signer = PUBLISHER) -> dict[str, Any]:
    return sign_wpc(payload(job_id), signer, NOW)


def policy_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM policies").fetchone()[0])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(sqlite_url(tmp_path))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "breakglass.db"


class Counter:
    """Counts the requests an app served: proves a cache hit never reached the network."""

    def __init__(self) -> None:
        self.requests = 0

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests += 1
        return await handler(request)


@pytest.fixture
def counter() -> Counter:
    return Counter()


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def registry_app(store: SqlStore, publishers: set[str], counter: Counter | None = None) -> Any:
    app = web.Application(middlewares=[counter.middleware] if counter else [])
    add_registry_routes(app, store, publishers)
    return app


@pytest.fixture
async def http(
    store: SqlStore, counter: Counter
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with serve(registry_app(store, {PUBLISHER.did}, counter)) as client:
        yield client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened
