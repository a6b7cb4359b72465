"""The revocation listener's PostgreSQL connection is lost (a failover, an admin's
``pg_terminate_backend``, a proxy dropping it): it comes back, and what was revoked while it
was away still reaches this replica (docs/notes/store-connections.md). Two replicas over one
schema, their connections named apart so only theirs are terminated (``connections.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time as wall
from collections.abc import AsyncIterator

import pytest

from adapters.graph.simulated import SimulatedTenant
from adapters.store import connect as store_connect
from adapters.store import notify
from bench.fleet import HANG_GUARD_SECONDS, Replica, SharedTime, approve, open_replica, quiet
from engine.cst import TokenKind
from engine.lifecycle import Kill
from tests.integration.faults.conftest import JOB
from tests.integration.faults.connections import Backends, app_name, given, with_app_name

# ------------------------------------------------------------- the revocation listener


@pytest.fixture
def two_names() -> tuple[str, str]:
    return app_name("bg_conn_a"), app_name("bg_conn_b")


@pytest.fixture
async def replicas(
    pg_schema_url: str, two_names: tuple[str, str], time: SharedTime
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B on one schema and one tenant, each its connections named apart;
    job ``JOB`` approved on A, its grant written, both quiet."""
    async with SimulatedTenant(clock=time.manual, ca_interval=0.02, strict=True) as tenant:
        a = await open_replica("a", with_app_name(pg_schema_url, two_names[0]), tenant, time)
        b = await open_replica("b", with_app_name(pg_schema_url, two_names[1]), tenant, time)
        try:
            await approve(a, JOB)
            await quiet(time, a, b)
            yield a, b
        finally:
            await a.close()
            await b.close()


async def listening_again(backends: Backends, lost: int) -> float:
    """Wait until the listener LISTENs on a new connection; the seconds it took. Bounded by
    the listener's own reconnect wait and connect timeout (never a guess of speed)."""
    within = notify.RECONNECT_SECONDS + store_connect.PG_CONNECT_TIMEOUT_S + HANG_GUARD_SECONDS
    started = wall.monotonic()
    while not [pid for pid in backends.listener() if pid != lost]:
        if wall.monotonic() - started > within:
            raise AssertionError(f"the listener did not reconnect within {within} s")
        await asyncio.sleep(0.01)
    return wall.monotonic() - started


async def heard(replica: Replica, jti: str) -> bool:
    """Has ``replica``'s fast path heard ``jti`` (bounded, as the replica tests wait)?"""
    deadline = wall.monotonic() + 5.0
    while jti not in replica.service.revoked:
        if wall.monotonic() > deadline:
            return False
        await asyncio.sleep(0.002)
    return True


@pytest.mark.postgres
async def test_the_revocation_listener_comes_back_after_its_connection_is_terminated(
    replicas: tuple[Replica, Replica],
    two_names: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = replicas
    a_conns = Backends(two_names[0])
    jti = (await a.job(JOB)).token(TokenKind.AGENT).jti  # type: ignore[union-attr]
    with caplog.at_level(logging.INFO):
        lost = a_conns.terminate_listener()
        took = await listening_again(a_conns, lost)
        given(jti not in a.service.revoked, "nothing revoked yet")

        started = wall.monotonic()
        given((await b.service.command(JOB, Kill(b.actor("bob")))).ok, "Kill on B")
        assert await heard(a, jti), "A did not hear B's Kill after its listener came back"
    print(f"listener back after {took:.2f} s; Kill heard {wall.monotonic() - started:.3f} s")

    lines = [r for r in caplog.records if r.name == "breakglass.store"]
    assert [r.levelno for r in lines if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert not [r for r in lines if r.exc_info]


@pytest.mark.postgres
async def test_a_kill_while_the_listener_is_away_is_heard_once_it_is_back(
    replicas: tuple[Replica, Replica], two_names: tuple[str, str]
) -> None:
    a, b = replicas
    a_conns = Backends(two_names[0])
    jti = (await a.job(JOB)).token(TokenKind.AGENT).jti  # type: ignore[union-attr]
    lost = a_conns.terminate_listener()
    given((await b.service.command(JOB, Kill(b.actor("bob")))).ok, "Kill on B")
    given(not a_conns.listener(), "the Kill committed before A listened again")

    await listening_again(a_conns, lost)

    assert await heard(a, jti), "A's fast path never heard B's Kill"


@pytest.mark.postgres
async def test_a_kill_while_the_listener_is_away_still_refuses_the_next_call(
    replicas: tuple[Replica, Replica], two_names: tuple[str, str]
) -> None:
    """The notice is only the fast path: the store check refuses the revoked token."""
    a, b = replicas
    a_conns = Backends(two_names[0])
    job = await a.job(JOB)
    token = await a.agent_token(JOB)
    read = job.plan.payload["metadata"]["breakglass"]["verify_action"]
    a_conns.terminate_listener()
    given((await b.service.command(JOB, Kill(b.actor("bob")))).ok, "Kill on B")
    before = len(a.tools.called)

    outcome = await a.gateway.call(JOB, token, read["tool"], read["arguments"])

    assert (outcome.allowed, outcome.reason) == (False, "TOKEN_INVALID")
    assert a.tools.called[before:] == []
