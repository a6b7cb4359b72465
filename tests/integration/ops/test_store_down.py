"""Full disk (issue 20, item 4): a store that refuses writes turns ``/readyz`` not-ready with a
503 ``STORE_UNAVAILABLE`` naming no path, and everything recovers once it accepts writes.

The fault is injected in PostgreSQL itself: a trigger on every table raises SQLSTATE 53100
``disk_full`` with the message a full disk gives, so reads still work and writes fail.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from bot.app import Runtime
from bot.clock import FileClock
from bot.config import load_settings
from engine.errors import StoreError
from tests.integration.console.conftest import role_request
from tests.integration.store.conftest import PG_HOST, PG_PORT

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DISK_FULL = """
CREATE FUNCTION {schema}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'could not extend file "base/16384/24576": No space left on device'
    USING ERRCODE = 'disk_full';
END $$;
"""


def admin(statement: str) -> list[Any]:
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="test", autocommit=True
    ) as conn:
        cursor = conn.execute(statement.encode())
        return cursor.fetchall() if cursor.description else []


class Disk:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        admin(DISK_FULL.format(schema=schema))
        rows = admin(f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'")
        self.tables = [row[0] for row in rows]

    def fill(self) -> None:
        for table in self.tables:
            on = f'{self.schema}."{table}"'
            admin(
                f"CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE OR DELETE ON {on}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {self.schema}.disk_full()"
            )

    def free(self) -> None:
        for table in self.tables:
            admin(f'DROP TRIGGER disk_full ON {self.schema}."{table}"')


@pytest.fixture
async def runtime(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Runtime, FileClock, Disk]]:
    clock = FileClock(tmp_path / "clock")
    clock.set(T0)
    env = {
        "BREAKGLASS_HOME": str(tmp_path),
        "BREAKGLASS_DATABASE_URL": pg_url,
        "BREAKGLASS_TEST_CLOCK_FILE": str(clock.path),
    }
    running = Runtime(replace(load_settings(env), port=0))
    await running.start()
    schema = re.search(r"search_path%3D(\w+)", pg_url)
    assert schema is not None
    yield running, clock, Disk(schema.group(1))
    await running.stop()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        return response.status, await response.json()


async def test_a_full_disk_makes_readyz_not_ready_and_it_recovers(
    runtime: tuple[Runtime, FileClock, Disk],
) -> None:
    service_runtime, clock, disk = runtime
    request = role_request()
    async with aiohttp.ClientSession() as session:
        api = f"{service_runtime.internal_url}/console/api/request"
        async with session.post(api, json=request) as response:
            assert response.status == 200
            created = await response.json()
            job_id, plan = created["job_id"], created["result"]["plan_hash"]
        ready = f"{service_runtime.url}/readyz"
        assert (await get(session, ready))[0] == 200

        disk.fill()
        kill = {"as": "console:bob", "verb": "kill", "job_id": job_id, "plan_hash": plan}
        act = f"{service_runtime.internal_url}/console/api/act"
        async with session.post(act, json=kill) as response:
            answer = await response.json()
            assert (response.status, answer["error"]) == (503, "STORE_UNAVAILABLE")
            assert "base/" not in str(answer)
        assert (await get(session, ready))[0] == 503  # the refused write turned readiness off
        disk.free()
        assert (await get(session, ready))[0] == 200  # a probe write landed: ready again
        disk.fill()
        clock.advance(timedelta(minutes=61))  # the pending request expires: the tick writes
        assert service_runtime.readiness is not None
        with pytest.raises(StoreError):
            await service_runtime.readiness.watch(service_runtime.service.tick)
        status, body = await get(session, ready)
        assert (status, body["ready"], body["error"]) == (503, False, "STORE_UNAVAILABLE")
        assert "base/" not in str(body)
        assert (await service_runtime.service.load(job_id)).state == "pending_approval"

        disk.free()
        status, body = await get(session, ready)
        assert (status, body["ready"]) == (200, True)
        await service_runtime.readiness.watch(service_runtime.service.tick)
        assert (await service_runtime.service.load(job_id)).state != "pending_approval"
