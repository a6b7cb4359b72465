"""Two replicas over one PostgreSQL schema and one simulated tenant over HTTP (the harness is
``bench.fleet``, shared with ``make load`` and ``make chaos``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.graph.simulated import SimulatedTenant
from bench.fleet import SharedTime
from tests.integration.service.conftest import env  # noqa: F401 (single-replica tests)
from tests.integration.store.conftest import pg_listening, pg_schema


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    why = pg_listening()
    if why is not None:
        pytest.skip(f"!!! PostgreSQL is UNREACHABLE ({why}): the replica tests did NOT run !!!")
    with pg_schema("bg_test") as url:
        yield url


@pytest.fixture
def time() -> SharedTime:
    return SharedTime()


@pytest.fixture
async def tenant(time: SharedTime) -> AsyncIterator[SimulatedTenant]:
    async with SimulatedTenant(clock=time.manual, ca_interval=0.02, strict=True) as sim:
        yield sim
