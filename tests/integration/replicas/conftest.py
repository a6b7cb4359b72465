"""Two replicas over one PostgreSQL schema and one simulated tenant over HTTP (the harness is
``bench.fleet``, shared with ``make load`` and ``make chaos``)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.graph.simulated import SimulatedTenant
from bench.fleet import SharedTime
from tests.integration.service.conftest import env  # noqa: F401 (single-replica tests)
from tests.integration.store.conftest import PG_BASE, pg_admin, pg_listening


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    why = pg_listening()
    if why is not None:
        pytest.skip(f"!!! PostgreSQL is UNREACHABLE ({why}): the replica tests did NOT run !!!")
    schema = f"bg_test_{secrets.token_hex(6)}"
    pg_admin("CREATE SCHEMA {}", schema)
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        pg_admin("DROP SCHEMA {} CASCADE", schema)


@pytest.fixture
def time() -> SharedTime:
    return SharedTime()


@pytest.fixture
async def tenant(time: SharedTime) -> AsyncIterator[SimulatedTenant]:
    async with SimulatedTenant(clock=time.manual, ca_interval=0.02, strict=True) as sim:
        yield sim
