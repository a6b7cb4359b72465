"""The store's PostgreSQL connections are lost mid-job (a failover or restart, an admin's
``pg_terminate_backend``, a proxy dropping connections): docs/notes/store-connections.md.

The loss is real: this test's own backends are terminated on the server
(``connections.py``), never a mock of our code. Two ways a pooled connection meets it:

- ``idle``: the connection sat in the pool long enough to be pinged at checkout
  (``adapters/store/connect.py:_ping_when_idle``), which finds it dead and reconnects;
- ``busy``: it was used within ``PG_PING_AFTER_IDLE_S`` (a busy replica), so its next
  statement meets the dead connection and fails; SQLAlchemy then invalidates the pool.

Which of the two happens depends on wall-clock time in production; here it is set
(``PG_PING_AFTER_IDLE_S`` 0 or infinite), so nothing depends on the machine's speed.

What must hold (DESIGN §10): every approved job ends, signed and verified, with nothing
left privileged; a lost connection costs at most a retry, never an approved job, a
person's command or a receipt; the log says it in a clear line, without a traceback storm,
and nobody is told the database's own text. Preconditions are checked with ``given`` (not
``assert``), so a broken set-up can never pass for what is tested. The revocation
listener's connection: ``test_store_connections_listener.py``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.store import connect as store_connect
from engine.cst import TokenKind
from engine.errors import StoreError, describe
from engine.job import ACTIVE, KILLED, RESOLVED, ROLLING_BACK
from engine.lifecycle import Approve, Kill, Request
from engine.tools import ToolResult
from tests.integration.faults.conftest import (
    JOB,
    TARGETS,
    TENANT,
    TICK_SECONDS,
    FullEnv,
    active_job,
)
from tests.integration.faults.connections import (
    Backends,
    Cut,
    app_name,
    given,
    with_app_name,
)
from tests.integration.faults.test_store_full import (
    REMOVAL,
    TEMPLATES,
    assert_ended_whole,
    holds,
    tool_receipts,
    window_end,
)
from tests.integration.store.conftest import pg_schema, url_of

POSTGRES = [pytest.param("postgres", marks=pytest.mark.postgres)]
DB_TEXT = ("postgresql", "127.0.0.1", "AdminShutdown", "terminating connection", "server closed")
IS_REVOKED = "FROM revocations"  # the gateway's store check: the first statement of a call
UPDATE_JOB = "UPDATE jobs"  # a command's compare-and-set write


# ------------------------------------------------------------- the environment


@pytest.fixture
def conn_name() -> str:
    return app_name()


@pytest.fixture
def pg_url(pg_reachable: None, conn_name: str) -> Iterator[str]:
    """This test's schema, its connections named ``conn_name`` (``connections.py``)."""
    with pg_schema("bg_test") as url:
        yield with_app_name(url, conn_name)


@pytest.fixture(params=POSTGRES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_of(request, tmp_path)


@pytest.fixture
def backends(conn_name: str) -> Backends:
    return Backends(conn_name)


@pytest.fixture(params=["idle", "busy"])
def pool(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Whether a pooled connection is pinged at checkout (see the module's docstring)."""
    mode = str(request.param)
    ping_after = 0.0 if mode == "idle" else float("inf")
    monkeypatch.setattr(store_connect, "PG_PING_AFTER_IDLE_S", ping_after)
    return mode


@pytest.fixture
def cut(full: FullEnv) -> Iterator[Cut]:
    cutter = Cut(full.service.store._engine)  # type: ignore[attr-defined]
    try:
        yield cutter
    finally:
        cutter.close()


async def ticks_until_ended(env: FullEnv, before_each: Any = None, rounds: int = 80) -> None:
    """Tick (``before_each`` first, each round) until the job has ended; bounded."""
    for _ in range(rounds):
        if before_each is not None:
            before_each()
        await env.tick()
        job = await env.service.load(JOB)
        if job.state in RESOLVED:
            return
        env.clock.advance(timedelta(seconds=TICK_SECONDS))
    raise AssertionError(f"job still {job.state} after {rounds} ticks")


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


def escalations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ESCALATION" in r.getMessage()]


def told(env: FullEnv) -> str:
    return "\n".join(repr(e) for e in env.chat.events)


async def everything_sent_is_receipted(env: FullEnv, sent_from: int, chained_from: int) -> None:
    receipted = Counter(tool for tool, _ in await tool_receipts(env, chained_from))
    sent = Counter(env.tools.sent[sent_from:])
    assert receipted == sent, f"sent to the tenant, never receipted: {sent - receipted}"


async def now_at(env: FullEnv) -> tuple[int, int]:
    """How many calls the tenant has had, and how many records the job's chain holds."""
    return len(env.tools.sent), len(await env.service.store.chain(JOB))


async def ended_whole_all_receipted(
    env: FullEnv, template: str, since: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Ended whole, every call sent ``since`` receipted, and no escalation said."""
    await assert_ended_whole(env, template)
    await everything_sent_is_receipted(env, *since)
    assert escalations(caplog) == []


# ------------------------------------------------------------- while a job is active


@pytest.mark.parametrize("template", TEMPLATES)
async def test_the_window_ends_on_time_after_the_connections_are_terminated(
    full: FullEnv, backends: Backends, pool: str, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, template)
    await window_end(full)
    given(backends.terminate_pool(), "the store's connections were terminated")

    await ticks_until_ended(full)

    await assert_ended_whole(full, template)
    assert tracebacks(caplog) == []
    assert escalations(caplog) == []


async def test_the_approved_write_survives_a_connection_lost_as_it_starts(
    full: FullEnv, cut: Cut, caplog: pytest.LogCaptureFixture
) -> None:
    cut.arm(IS_REVOKED)  # the gateway's first statement for the runbook's write
    await active_job(full, "entra-role")
    given(cut.cuts, "the write's store check met a terminated connection")

    job = await full.service.load(JOB)
    assert (job.state, job.write_done) == (ACTIVE, True), "the approved job was lost"
    assert holds(full, "entra-role")
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("losses", [1, 2])  # its retry meets a lost connection too
async def test_an_agent_call_on_a_lost_connection_is_answered_not_raised(
    full: FullEnv, cut: Cut, losses: int
) -> None:
    await active_job(full, "entra-role")
    s = full.service
    job = await s.load(JOB)
    token = s.token_for(job, TokenKind.AGENT)
    read = job.plan.payload["metadata"]["breakglass"]["verify_action"]
    chained = len(await s.store.chain(JOB))
    sent = len(full.tools.sent)
    cut.arm(IS_REVOKED, times=losses)

    try:
        outcome = await full.gateway.call(JOB, token, read["tool"], read["arguments"])
    except StoreError as exc:
        raise AssertionError(f"the agent's call raised the store's error: {exc}") from exc

    given(len(cut.cuts) == losses, "the call's store check met a terminated connection")
    assert not any(text in repr(outcome) for text in DB_TEXT), outcome
    if losses == 1:  # its retry, on a new connection, answered
        assert outcome.allowed, outcome
        await everything_sent_is_receipted(full, sent, chained)
        return
    # Whether its token is revoked is unknown: refused, not sent, and the refusal receipted.
    assert (outcome.allowed, outcome.reason) == (False, "STORE_UNAVAILABLE"), outcome
    assert full.tools.sent[sent:] == []
    assert await tool_receipts(full, chained) == [(read["tool"], "error")]


async def test_a_kill_after_the_connections_are_terminated_is_recorded_at_once(
    full: FullEnv, backends: Backends, pool: str, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, "entra-role")
    s = full.service
    sent, chained = len(full.tools.sent), len(await s.store.chain(JOB))
    given(backends.terminate_pool(), "the store's connections were terminated")

    try:
        outcome = await s.command(JOB, Kill(s.actor("console:erin")))
    except StoreError as exc:
        raise AssertionError(f"Kill not recorded: {describe(exc)}") from exc

    assert outcome.ok, outcome
    assert (await s.load(JOB)).state in (ROLLING_BACK, KILLED)
    assert escalations(caplog) == []
    await full.settle()
    await everything_sent_is_receipted(full, sent, chained)


async def test_an_approval_after_the_connections_are_terminated_is_recorded_at_once(
    full: FullEnv, backends: Backends, pool: str
) -> None:
    s = full.service
    request = Request(
        job_id=JOB,
        actor=s.actor("console:alice"),
        template="entra-role",
        targets={"tenant_id": TENANT, **TARGETS["entra-role"]},
        minutes=30,
        justification="INC-10: the database fails over",
        ticket="INC-10",
        channel={"platform": "console", "conversation": "incident-10"},
    )
    out = await s.request(request)
    given(out.ok, "the request was recorded")
    plan = out.result["plan_hash"]
    given((await s.command(JOB, Approve(s.actor("console:bob"), plan))).ok, "Bob approved")
    given(backends.terminate_pool(), "the store's connections were terminated")

    try:
        approved = await s.command(JOB, Approve(s.actor("console:carol"), plan))
    except StoreError as exc:
        raise AssertionError(f"approval not recorded: {describe(exc)}") from exc

    assert approved.ok, approved
    await full.settle()
    assert (await s.load(JOB)).state == ACTIVE


async def test_a_command_whose_transaction_loses_its_connection_leaves_nothing_half_written(
    full: FullEnv, cut: Cut
) -> None:
    """The connection is terminated inside the Kill's transaction (just before its
    compare-and-set): whatever the caller is told, the stored job is whole, as before or
    ended, never in between; and a Kill pressed again is recorded."""
    await active_job(full, "entra-role")
    s = full.service
    before, records = await s.load(JOB), len(await s.store.chain(JOB))
    cut.arm(UPDATE_JOB)
    with contextlib.suppress(StoreError):
        await s.command(JOB, Kill(s.actor("console:erin")))
    given(cut.cuts, "the Kill's write met a terminated connection")

    after = await s.load(JOB)
    if after.state == ACTIVE:
        assert after.to_json() == before.to_json()
        assert len(await s.store.chain(JOB)) == records
    else:
        assert after.state in (ROLLING_BACK, KILLED)
    with contextlib.suppress(StoreError):
        await s.command(JOB, Kill(s.actor("console:erin")))
    await ticks_until_ended(full)
    await assert_ended_whole(full, "entra-role", KILLED)


# ------------------------------------------------------------- during the rollback


@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_rollback_whose_connections_are_terminated_at_its_removal_ends_whole(
    full: FullEnv,
    backends: Backends,
    pool: str,
    template: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await active_job(full, template)
    since = await now_at(full)

    async def lose() -> None:
        given(backends.terminate_pool(), "the store's connections were terminated")

    full.tools.tool, full.tools.before = REMOVAL[template], lose
    await window_end(full)
    await ticks_until_ended(full)

    given(full.tools.before is None, "the connections were lost as the removal left")
    await ended_whole_all_receipted(full, template, since, caplog)
    assert len(tracebacks(caplog)) <= 1, tracebacks(caplog)


@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_rollback_call_whose_store_check_is_lost_twice_is_tried_again(
    full: FullEnv, cut: Cut, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    await active_job(full, template)
    await window_end(full)
    cut.arm(IS_REVOKED, times=2)  # the removal's revocation check, and its retry

    await ticks_until_ended(full)

    given(len(cut.cuts) == 2, "the removal's store check met two lost connections")
    await assert_ended_whole(full, template)  # refused STORE_UNAVAILABLE once, then removed
    assert escalations(caplog) == []


@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_rollback_whose_connections_are_lost_at_every_call_ends_whole(
    full: FullEnv,
    backends: Backends,
    pool: str,
    template: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await active_job(full, template)
    since = await now_at(full)
    inner = full.tools.tools.call
    lost: list[str] = []

    async def losing(tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        lost.extend(str(pid) for pid in backends.terminate_pool())
        return await inner(tool, arguments)

    full.tools.tools.call = losing  # type: ignore[method-assign, assignment]
    await window_end(full)
    await ticks_until_ended(full)

    given(lost, "connections were lost during the rollback")
    await ended_whole_all_receipted(full, template, since, caplog)


# ------------------------------------------------------------- again and again


@pytest.mark.parametrize("template", TEMPLATES)
async def test_every_job_ends_whole_with_its_connections_terminated_every_tick(
    full: FullEnv,
    backends: Backends,
    pool: str,
    template: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await active_job(full, template)
    since = await now_at(full)

    def lose() -> None:
        backends.terminate_pool()

    await ticks_until_ended(full, before_each=lose)

    given(len(backends.terminated) > 10, "connections were lost again and again")
    await ended_whole_all_receipted(full, template, since, caplog)
    assert len(tracebacks(caplog)) <= 1, tracebacks(caplog)
    assert not any(text in told(full) for text in DB_TEXT)
