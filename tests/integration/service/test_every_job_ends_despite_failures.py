"""Every approved job ends when what is around it fails: a chat that never answers holds
neither the grant nor the rollback, and what a shutdown cuts off waits in the outbox; an
agent that cannot be stopped, a rollback runner that keeps crashing and a replica with keys
of its own do not keep a job open. (Bad input and Kills: ``test_every_job_ends.py``.)

The same service over the simulated tenant as there (``sim_env``: ``simulated.py``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine import catalog, chain
from engine.cst import TokenKind
from engine.job import ACTIVE, FAILED, KILLED, ROLLING_BACK, describe_grant
from engine.lifecycle import Approve, Kill
from engine.timeutil import parse_iso
from engine.tools import ToolResult
from engine.verify import verify_bundle
from tests.integration.service.simulated import (
    IDS,
    ROLE,
    RealTools,
    SimEnv,
    advancing,
    alices_request,
    approved_job,
    tool_receipts,
)
from tests.support.engine_sim import fixed_keys, trust_for
from tests.support.waiting import settle


@dataclass
class HangingChat:
    """A chat platform that takes every post and answers only when ``gate`` opens."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    platform: str = "console"
    events: list[Any] = field(default_factory=list)

    async def deliver(self, event: Any) -> None:
        await self.gate.wait()
        self.events.append(event)


async def test_a_hanging_chat_holds_neither_the_grant_nor_the_rollback(sim_env: SimEnv) -> None:
    # Every command tells people beside the job: a chat that never answers must not keep a
    # write, a Kill or any rollback step waiting (a hanging Slack delayed the revocation of
    # sessions by 33 s, each delivery waiting out its budget in turn).
    s = sim_env.service
    chat = HangingChat()
    s.notifier.register(chat)

    def not_chat() -> list[asyncio.Task[Any]]:
        return [t for t in s.tasks if not t.get_name().startswith("chat")]

    async def grant_and_kill() -> None:
        targets = {"principal_id": IDS["dave"], "role_definition_id": ROLE}
        out = await s.request(alices_request(sim_env, "entra-role", targets))
        assert out.ok, out
        for who in ("bob", "carol"):
            approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
            assert (await s.command("job-input", approval)).ok
        await settle(pending=not_chat)
        assert (await s.load("job-input")).state == ACTIVE
        assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
        await settle(pending=not_chat)

    await asyncio.wait_for(grant_and_kill(), timeout=60)  # bounds a hang; no race on speed
    job = await s.load("job-input")
    assert (job.state, job.rollback_verified) == (KILLED, True)
    assert chat.events == []  # nobody has been told yet: every post still waits
    chat.gate.set()
    await sim_env.settle()
    seqs = [r.seq for e in chat.events for r in e.records]
    assert seqs == sorted(set(seqs)), seqs  # told late, but in the job's order, once each
    assert [e.kind for e in chat.events].count("finish") == 1


async def test_what_a_shutdown_cuts_off_waits_in_the_outbox(sim_env: SimEnv) -> None:
    # Told beside the job, people may still be waiting for their posts when the service
    # stops: nothing may be lost, the next start delivers it from the outbox.
    s = sim_env.service
    chat = HangingChat()
    s.notifier.register(chat)
    targets = {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    out = await s.request(alices_request(sim_env, "entra-role", targets))
    assert out.ok, out
    approval = Approve(s.actor("console:bob"), out.result["plan_hash"])
    assert (await s.command("job-input", approval)).ok
    told = [t for t in s.tasks if t.get_name().startswith("chat")]
    assert len(told) >= 2  # the request's posts and the approval's, both waiting

    await s.close()
    queued = await s.store.due("console", sim_env.clock.now() + timedelta(days=1))
    kinds = [item.payload["kind"] for item in queued]
    assert chat.events == []  # each of the two commands' posts, none lost
    request_posts, approval_posts = ["ask_approvers", "update_cards"], ["announce", "update_cards"]
    assert sorted(kinds) == sorted(["receipts", *request_posts, "receipts", *approval_posts])
    assert sorted(s for item in queued for s in item.payload["seqs"]) == [0, 1]
    assert all(item.job_id == "job-input" for item in queued)


@dataclass
class UnstoppableAgent:
    """An agent whose process cannot be stopped: its start runs the real runbook; its halt
    fails as a process manager's signal can, or never returns (its launcher died and its
    agent, in a session of its own, held the run open: a black-box run)."""

    runbook: RunbookExecutor
    hangs: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)  # a hanging halt ends

    async def start(self, job: Mapping[str, Any], token: str) -> None:
        await self.runbook.start(job, token)

    async def refresh(self, job: Mapping[str, Any], token: str) -> None:
        await self.runbook.refresh(job, token)

    async def halt(self, job_id: str) -> None:
        if self.hangs:
            await self.released.wait()
        raise OSError(1, "Operation not permitted")


@pytest.mark.parametrize("hangs", [False, True], ids=["halt fails", "halt hangs"])
async def test_an_agent_that_cannot_be_stopped_does_not_hold_the_rollback(
    sim_env: SimEnv, hangs: bool, caplog: pytest.LogCaptureFixture
) -> None:
    s = sim_env.service
    s.executor = agent = UnstoppableAgent(sim_env.executor, hangs)
    s.rules = replace(s.rules, halt_wait=timedelta(seconds=0.05))  # it never stops anyway
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    )
    assert (job.state, job.write_done) == (ACTIVE, True)
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    (rollback,) = [t for t in s.tasks if t.get_name() == "rollback:job-input"]
    await asyncio.wait_for(rollback, timeout=60)  # a rollback waiting on the agent fails
    agent.released.set()
    await sim_env.settle()
    job = await s.load("job-input")
    assert (job.state, job.rollback_verified, job.still_privileged) == (KILLED, True, ())
    assert not [g for g in sim_env.sim.active_grants() if g.principal_id == IDS["dave"]]
    stopped = "did not stop within 0.05 s" if hangs else "could not be stopped (PermissionError)"
    assert any(stopped in m and "the rollback goes on" in m for m in caplog.messages)
    bundle, _ = await s.bundle(job)
    report = verify_bundle(bundle, trust_for(s.keys))
    assert report.valid, report.reasons


@dataclass
class MalformedRemoval(RealTools):
    """A tenant adapter with a bug: its role removal answers a body that is not JSON (the
    receipt cannot be written), at every attempt. Everything else is the real adapter."""

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        if tool_name == catalog.REMOVE_ROLE:
            return ToolResult("success", {"removed_at": object()})
        return await super().call(tool_name, arguments)


async def test_a_rollback_runner_that_keeps_crashing_ends_the_job_failed_within_its_budget(
    sim_env: SimEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # A runner failing the same way at every tick kept its job rolling_back for ever (a
    # black-box run with replicas: 454 traceback lines, the job never ended).
    s = sim_env.service
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    )
    assert (job.state, job.write_done) == (ACTIVE, True)
    s.tools = MalformedRemoval(s.tools)
    sim_env.clock.advance(6 * 60)  # past PIM's first five minutes: the removal is tried
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    await sim_env.settle()
    deadline = parse_iso(str((await s.load("job-input")).ended_at)) + s.rules.rollback_budget
    ticks = 0
    while (job := await s.load("job-input")).state == ROLLING_BACK:
        assert sim_env.clock.now() <= deadline + timedelta(minutes=1), "the job never ended"
        sim_env.clock.advance(30)
        await s.tick()
        await sim_env.settle()
        ticks += 1

    assert ticks > 2  # it failed again and again before the budget ran out
    assert job.state == FAILED
    assert job.rollback_verified is False
    grant = describe_grant(job)
    assert grant in job.still_privileged
    escalations = [r.getMessage() for r in caplog.records if "ESCALATION" in r.getMessage()]
    assert len(escalations) == 1, escalations
    assert grant in escalations[0]
    assert "StrictJsonError: cannot canonicalize" in escalations[0]
    tracebacks = [r for r in caplog.records if r.exc_info and "rollback runner" in r.msg]
    assert len(tracebacks) == 1  # then one line per failure
    records = await s.store.chain("job-input")
    assert records[-1].event["event_type"] == chain.RUN_END


async def test_a_replica_with_other_keys_has_its_calls_refused_and_receipted(
    sim_env: SimEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # A replica started with keys of its own could not verify the job's WPC: every call of
    # its rollback runner raised, and the job stayed rolling_back (black-box replica run).
    # Refused instead, the runner goes on to the end of its budget like any refused step.
    caplog.set_level(logging.INFO)
    s = sim_env.service
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    )
    other = JobService(
        store=s.store,
        keys=fixed_keys(b"another replica"),
        rules=s.rules,
        tools=s.tools,
        clock=sim_env.clock.now,
        directory=s.directory,
        sleep=advancing(sim_env.clock),
    )
    gateway = ToolGateway(other)
    before = sim_env.sim.state()
    read = job.plan.payload["metadata"]["breakglass"]["verify_action"]
    token = s.token_for(job, TokenKind.AGENT)
    outcome = await gateway.call("job-input", token, read["tool"], dict(read["arguments"]))

    assert (outcome.allowed, outcome.reason) == (False, "POLICY_INVALID")
    assert sim_env.sim.state() == before
    (refusal,) = [r for r in await tool_receipts(sim_env) if r["receipt_id"] == outcome.receipt_id]
    assert refusal["result_status"] == "error"
    assert f"refused {read['tool']} on job-input: POLICY_INVALID" in caplog.messages
