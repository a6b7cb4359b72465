"""A credential write (``add_application_password``) the job may not be able to remember
(ADR 0020, docs/notes/store-full.md §4): it leaves the gateway only once the job records it
in flight; one whose receipt never says what it created (the store refused it, the process
died, its answer was cut off) is removed at the window's end by the job's marker, receipted
under the rollback token, or the job ends ``failed`` naming the application.

The real gateway, Graph adapter and strict simulated tenant; the full disk is the
database's own refusal (``disk.py``); one manual clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from adapters.graph.simulated import Fault
from bot.gateway_service import GatewayOutcome
from engine import catalog
from engine.containment import EVERY_MARKED_KEY
from engine.cst import TokenKind
from engine.job import CLOSED, FAILED, KILLED, RESOLVED, Job
from engine.lifecycle import Kill, WriteSending
from engine.receipts import TOOL_RECEIPT, content_hash
from engine.timeutil import parse_iso
from engine.tools import ToolResult
from engine.verify import verify_bundle
from tests.integration.faults.conftest import (
    APP,
    JOB,
    TENANT,
    FullEnv,
    Tripwire,
    active_job,
    passwords,
    rotating_rules,
    until_ended,
)
from tests.support.engine_sim import trust_for

ADD = catalog.ADD_APP_PASSWORD
REMOVE = catalog.REMOVE_APP_PASSWORD
ARGS = {"tenant_id": TENANT, "application_id": APP, "job_id": JOB}
SWEEP = {**ARGS, "key_id": EVERY_MARKED_KEY}  # the removal of every password the job marked
POSTGRES_ONLY = pytest.mark.parametrize(
    "store_url",
    # SQLite: the in-flight mark is a small change of the job document, and the pages the
    # file still has take it (the receipt that follows is refused: the next test's case).
    [pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


async def rotating_job(env: FullEnv) -> str:
    """An active role job whose agent may add application passwords; its agent token."""
    env.service.rules = rotating_rules()
    await active_job(env, "entra-role")
    return env.service.token_for(await env.service.load(JOB), TokenKind.AGENT)


async def ended_after_the_window(env: FullEnv) -> Job:
    """The window's end, then tick until the job has ended (bounded)."""
    end = (await env.service.load(JOB)).window_end_at()
    assert end is not None
    if env.clock.now() < end:
        env.clock.advance(end - env.clock.now())
    return await until_ended(env)


async def receipts(env: FullEnv) -> list[Mapping[str, Any]]:
    """The job's tool receipt payloads, in chain order."""
    return [
        r.envelope["payload"]
        for r in await env.service.store.chain(JOB)
        if r.envelope is not None and r.envelope["envelope_type"] == TOOL_RECEIPT
    ]


async def sweeps(env: FullEnv) -> list[Mapping[str, Any]]:
    """Receipts of the removal of every password the job marked on the application."""
    swept = (REMOVE, content_hash(SWEEP))
    return [r for r in await receipts(env) if (r["tool_name"], r["args_hash_b64u"]) == swept]


async def assert_valid_bundle(env: FullEnv, job: Job) -> None:
    bundle, _ = await env.service.bundle(job)
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons


def rollback_scope(job: Job) -> str:
    token = job.token(TokenKind.ROLLBACK)
    assert token is not None
    return str(token.claims["token_scope_hash_b64u"])


def logged(caplog: pytest.LogCaptureFixture, level: int, *parts: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= level and all(part in r.getMessage() for part in parts)
    ]


# ------------------------------------------------------------- not sent unless remembered


@POSTGRES_ONLY
async def test_a_credential_write_whose_in_flight_mark_is_refused_is_not_sent(
    full: FullEnv, caplog: pytest.LogCaptureFixture
) -> None:
    token = await rotating_job(full)
    s = full.service
    before, records = (await s.load(JOB)).to_json(), len(await s.store.chain(JOB))
    sent = len(full.tools.sent)
    await full.disk.fill()

    outcome = await full.gateway.call(JOB, token, ADD, ARGS)

    # Refused: an error result to the agent, nothing sent, the store's text not in it.
    assert (outcome.allowed, outcome.status) == (True, "error")
    assert outcome.result == {"error": "STORE_UNAVAILABLE", "sent": False}
    assert outcome.receipt_id == ""  # the store could not take its receipt either
    assert full.tools.sent[sent:] == []
    assert passwords(full) == []
    # Nothing changed: the job and its chain are as before.
    assert (await s.load(JOB)).to_json() == before
    assert len(await s.store.chain(JOB)) == records
    # Recorded where it can be: the log names the job and the tool.
    assert logged(caplog, logging.ERROR, JOB, ADD, "not sent")

    await full.disk.free()
    job = await ended_after_the_window(full)
    assert (job.state, job.still_privileged) == (CLOSED, ())
    await assert_valid_bundle(full, job)


# ------------------------------------------------------------- sent, receipt refused


async def test_a_credential_sent_whose_receipt_is_refused_is_removed_at_the_end(
    full: FullEnv, caplog: pytest.LogCaptureFixture
) -> None:
    token = await rotating_job(full)
    full.tools.tool, full.tools.before = ADD, full.disk.fill  # after its mark, before it goes

    outcome = await full.gateway.call(JOB, token, ADD, ARGS)

    [created] = passwords(full)
    key_id = created["keyId"]
    assert (outcome.status, outcome.receipt_id, outcome.result["key_id"]) == (
        "success",
        "",
        key_id,
    )
    job = await full.service.load(JOB)
    assert [m["application_id"] for m in job.credentials_in_flight] == [APP]
    assert job.derived_rollback == ()  # its receipt, which derives the removal, is lost
    assert ADD not in [r["tool_name"] for r in await receipts(full)]
    # ERROR naming the job, the application and the key id; the secret nowhere.
    assert logged(caplog, logging.ERROR, JOB, APP, key_id, "refused its receipt")
    assert not [r for r in caplog.records if "secret" in r.getMessage().lower()]

    await full.disk.free()
    job = await ended_after_the_window(full)

    assert (job.state, job.still_privileged) == (CLOSED, ())
    assert passwords(full) == [], "a password the window created outlived the job"
    [swept] = [r for r in await sweeps(full) if r["result_status"] == "success"]
    assert swept["binding"]["token_scope_hash_b64u"] == rollback_scope(job)
    await assert_valid_bundle(full, job)


# ------------------------------------------------------------- the process died sending


async def crash_after_sending(env: FullEnv, lag_seconds: float = 0.0) -> str:
    """What a process killed between sending a credential write and receipting it leaves:
    the mark in the job, the password in the tenant (shown to reads ``lag_seconds`` later),
    no receipt. Its key id."""
    await rotating_job(env)
    end = (await env.service.load(JOB)).window_end_at()
    assert end is not None
    env.clock.advance(end - env.clock.now() - timedelta(seconds=10))  # just before the end
    env.sim.set_replication_lag(seconds=lag_seconds)
    mark = WriteSending(ADD, "tr_job-full_crashed", ARGS)
    assert (await env.service.command(JOB, mark)).ok
    result = await env.tools.call(ADD, ARGS)
    return str(result.body["key_id"])


async def test_a_credential_the_process_died_sending_is_removed_once_replication_shows_it(
    full: FullEnv,
) -> None:
    """Entra is eventually consistent: the first read after the window may not show the
    password yet. The removal is tried again until it finds it, or until a read begun the
    settle time after the window's end shows none (ADR 0013's rule)."""
    await crash_after_sending(full, lag_seconds=150.0)  # within the settle time (180 s)
    assert len(passwords(full)) == 1  # the primary has it; reads show it 140 s after the end

    job = await ended_after_the_window(full)

    assert (job.state, job.still_privileged) == (CLOSED, ())
    full.sim.set_replication_lag()
    assert passwords(full) == []
    tried = await sweeps(full)
    assert len(tried) >= 2, "one empty read right after the window was believed"
    assert job.ended_at is not None
    found_at = parse_iso(tried[-1]["timestamp"])  # the sweep that found and removed it
    assert found_at >= parse_iso(job.ended_at) + timedelta(seconds=140.0)
    await assert_valid_bundle(full, job)


async def test_a_credential_in_doubt_the_tenant_will_not_remove_ends_the_job_failed_naming_it(
    full: FullEnv, caplog: pytest.LogCaptureFixture
) -> None:
    key_id = await crash_after_sending(full)
    full.sim.add_fault(Fault("unavailable", "POST", "removePassword", times=10**6))

    job = await ended_after_the_window(full)

    assert job.state == FAILED
    [named] = [line for line in job.still_privileged if APP in line]
    assert "may still hold a password" in named
    assert JOB in named
    assert [key_id] == [p["keyId"] for p in passwords(full)]
    assert logged(caplog, logging.ERROR, "ESCALATION", JOB, APP)
    await assert_valid_bundle(full, job)


# ------------------------------------------------------------- cut off by a Kill


class AnswerNeverComes:
    """The real tool; a credential write reaches the tenant, but its answer never comes
    back (the call hangs until it is cancelled)."""

    def __init__(self, tools: Tripwire) -> None:
        self.tools = tools
        self.sent = asyncio.Event()

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        result = await self.tools.call(tool_name, arguments)
        if tool_name == ADD:
            self.sent.set()
            await asyncio.Event().wait()
        return result

    async def find_marked_grants(self) -> list[Any]:
        return await self.tools.find_marked_grants()


async def test_a_credential_write_a_kill_cut_off_is_removed_not_forgotten(
    full: FullEnv,
) -> None:
    token = await rotating_job(full)
    hanging = AnswerNeverComes(full.tools)
    full.service.tools = hanging
    s = full.service
    call = asyncio.ensure_future(full.gateway.call(JOB, token, ADD, ARGS))
    await hanging.sent.wait()
    assert len(passwords(full)) == 1

    assert (await s.command(JOB, Kill(s.actor("console:erin")))).ok
    outcome: GatewayOutcome = await call  # the rollback cancels it first: receipted so
    await full.settle()
    job = await s.load(JOB)
    for _ in range(20):
        if job.state in RESOLVED:
            break
        await full.tick()
        job = await s.load(JOB)

    assert outcome.result.get("cancelled") is True
    assert (job.state, job.still_privileged) == (KILLED, ())
    assert passwords(full) == []
    assert [r["result_status"] for r in await sweeps(full)] == ["success"]
    await assert_valid_bundle(full, job)
