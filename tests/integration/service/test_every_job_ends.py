"""Every approved job ends: ordinary bad input that the tenant refuses (a UPN where an object
id belongs, a policy id that is no GUID) ends the window early, with the write's error
receipted, a signed terminal record, a bundle that verifies and a bounded number of posts.

Runs the real Graph adapter against the simulated tenant on loopback, on a manual clock
that the service's injected sleep advances (nothing here waits on wall-clock time)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.graph.simulated import ManualClock, SimulatedTenant
from bot.app import SIMULATED_SEED, seed_people
from bot.executor import RunbookExecutor
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine import catalog, chain
from engine.cst import TokenKind
from engine.job import ACTIVE, CLOSED, FAILED, KILLED, ROLLING_BACK, Job, describe_grant
from engine.lifecycle import END_WRITE_FAILED, Approve, Kill, Request
from engine.receipts import TOOL_RECEIPT, content_hash
from engine.timeutil import parse_iso
from engine.tools import ToolResult
from engine.verify import verify_bundle
from tests.integration.graph.conftest import simulated_service
from tests.support.engine_sim import fixed_keys, trust_for
from tests.support.fakes import RecordingChat
from tests.support.waiting import settle

IDS = seed_people()
TENANT = SIMULATED_SEED["tenantId"]
ROLE = SIMULATED_SEED["roles"][0]["id"]
GROUP = SIMULATED_SEED["groups"][0]["id"]
RECEIPTS_EVERY = timedelta(seconds=10)


@dataclass
class SimEnv:
    service: JobService
    executor: RunbookExecutor
    chat: RecordingChat
    clock: ManualClock
    sim: SimulatedTenant

    async def settle(self) -> None:
        await self.executor.wait_idle()
        await self.service.tasks.settle()


def advancing(clock: ManualClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(max(seconds, 0.0))

    return sleep


@pytest.fixture
async def sim_env(tmp_path: Path) -> AsyncIterator[SimEnv]:
    clock = ManualClock()
    async with SimulatedTenant(clock=clock, ca_interval=0.02, strict=True) as sim:
        service, tools = await simulated_service(
            tmp_path,
            sim,
            clock,
            sleep=advancing(clock),
            bundle_dir=tmp_path / "bundles",
            receipts_every=RECEIPTS_EVERY,
        )
        executor = RunbookExecutor(ToolGateway(service))
        service.executor = executor
        chat = RecordingChat()
        service.notifier.register(chat)
        env = SimEnv(service, executor, chat, clock, sim)
        yield env
        await env.settle()
        await tools.close()
        await service.store.close()


def alices_request(env: SimEnv, template: str, targets: dict[str, str]) -> Request:
    """Alice's request as the console form sends it."""
    return Request(
        job_id="job-input",
        actor=env.service.actor("console:alice"),
        template=template,
        targets={"tenant_id": TENANT, **targets},
        minutes=30,
        justification="INC-7 as typed in the form",
        ticket="INC-7",
        channel={"platform": "console", "conversation": "incident-7"},
    )


async def approved_job(env: SimEnv, template: str, targets: dict[str, str]) -> Job:
    """Request, two approvals, and whatever follows until the service is idle."""
    s = env.service
    out = await s.request(alices_request(env, template, targets))
    assert out.ok, out
    for who in ("bob", "carol"):
        approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
        assert (await s.command("job-input", approval)).ok
    await env.settle()
    return await s.load("job-input")


async def tool_receipts(env: SimEnv) -> list[dict[str, Any]]:
    return [
        dict(r.envelope["payload"])
        for r in await env.service.store.chain("job-input")
        if r.envelope is not None and r.envelope["envelope_type"] == TOOL_RECEIPT
    ]


async def assert_ended_by_the_facts(env: SimEnv, job: Job, write_tool: str) -> None:
    """Closed (nothing was ever sent), the write's error receipted, a terminal record, a
    bundle that verifies, every chain record posted, and in few posts."""
    assert job.state == CLOSED, job
    assert job.end_reason == END_WRITE_FAILED
    assert job.rollback_verified is True
    assert job.still_privileged == ()
    (write,) = [r for r in await tool_receipts(env) if r["tool_name"] == write_tool]
    assert write["result_status"] == "error"
    records = await env.service.store.chain("job-input")
    assert records[-1].event["event_type"] == chain.RUN_END
    bundle, _ = await env.service.bundle(job)
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons
    posts = [e for e in env.chat.events if e.kind == "receipts"]
    assert {r.seq for e in posts for r in e.records} == {r.seq for r in records}
    assert len(posts) < len([r for r in records if r.seq > 0])  # receipts went out together
    assert "finish" in env.chat.kinds()


async def test_a_upn_as_the_principal_ends_the_job_with_the_write_error_receipted(
    sim_env: SimEnv,
) -> None:
    upn = "dave@breakglass-sim.onmicrosoft.com"
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": upn, "role_definition_id": ROLE}
    )
    await assert_ended_by_the_facts(sim_env, job, catalog.WRITE_ROLE)
    (write,) = [r for r in await tool_receipts(sim_env) if r["tool_name"] == catalog.WRITE_ROLE]
    refused = {
        "error": "INVALID_ARGUMENT",
        "message": "argument principal_id must be a GUID",
        "sent": False,
    }
    assert write["result_hash_b64u"] == content_hash(refused)


async def test_b_a_ca_exclusion_with_a_wrong_policy_id_ends_the_same_way(
    sim_env: SimEnv,
) -> None:
    job = await approved_job(
        sim_env, "ca-exclusion", {"policy_id": "not-a-guid", "group_id": GROUP}
    )
    await assert_ended_by_the_facts(sim_env, job, catalog.EXCLUDE_GROUP)


async def test_an_early_kill_contains_announces_and_removes_when_pim_allows(
    sim_env: SimEnv,
) -> None:
    s = sim_env.service
    job = await approved_job(
        sim_env, "entra-role", {"principal_id": IDS["dave"], "role_definition_id": ROLE}
    )
    assert (job.state, job.write_done, job.verified_after_write) == (ACTIVE, True, True)
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    await sim_env.settle()
    job = await s.load("job-input")
    assert job.state == KILLED, job
    assert job.rollback_verified is True
    (delayed,) = [e for e in sim_env.chat.events if e.detail.get("event") == "removal_delayed"]
    assert delayed.detail["contained"] == [catalog.REVOKE_SESSIONS]
    not_before = parse_iso(delayed.detail["not_before"])
    assert sim_env.clock.now() >= not_before  # removed only once PIM allowed it
    calls = [(r["tool_name"], r["result_status"]) for r in await tool_receipts(sim_env)]
    revoked = calls.index((catalog.REVOKE_SESSIONS, "success"))
    removed = calls.index((catalog.REMOVE_ROLE, "success"))
    assert calls.index((catalog.REMOVE_ROLE, "error")) < revoked < removed
    bundle, _ = await s.bundle(job)
    report = verify_bundle(bundle, trust_for(s.keys))
    assert report.valid, report.reasons


STANDING = SIMULATED_SEED["roleAssignments"][0]  # erin holds Global Administrator, standing
POLICY = SIMULATED_SEED["conditionalAccessPolicies"][0]
EXCLUDED = POLICY["conditions"]["users"]["excludeGroups"][0]  # the emergency-access group


@pytest.mark.parametrize(
    ("template", "targets"),
    [
        (
            "entra-role",
            {
                "principal_id": STANDING["principalId"],
                "role_definition_id": STANDING["roleDefinitionId"],
            },
        ),
        ("ca-exclusion", {"policy_id": POLICY["id"], "group_id": EXCLUDED}),
    ],
)
async def test_a_grant_the_tenant_already_holds_is_refused_before_anyone_is_asked(
    sim_env: SimEnv, template: str, targets: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Approved, its write would fail (or do nothing), and its end would report the standing
    grant as left behind and revoke its holder's sessions."""
    caplog.set_level(logging.INFO, "breakglass.service")
    s = sim_env.service
    tenant_before = sim_env.sim.state()
    out = await s.request(alices_request(sim_env, template, targets))
    assert (out.ok, out.reason) == (False, "ALREADY_GRANTED")
    assert await s.store.list_jobs() == []
    assert sim_env.chat.events == []
    assert sim_env.sim.state() == tenant_before
    assert "refused request by console:alice: ALREADY_GRANTED" in caplog.messages


async def test_two_early_kills_of_one_role_for_two_people_both_end_verified(
    sim_env: SimEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # Two responders at once, each given User Administrator by a job of their own: each
    # job's baseline holds the other's grant, which goes while it runs. Neither is drift.
    s = sim_env.service
    role = SIMULATED_SEED["roles"][2]["id"]
    jobs = {"job-dave": IDS["dave"], "job-alice": IDS["alice"]}
    for job_id, principal in jobs.items():
        request = alices_request(sim_env, "entra-role", {"principal_id": principal})
        request = replace(request, job_id=job_id)
        request.targets["role_definition_id"] = role
        out = await s.request(request)
        assert out.ok, out
        for who in ("bob", "carol"):
            approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
            assert (await s.command(job_id, approval)).ok
        await sim_env.settle()
    for job_id in jobs:
        assert (await s.command(job_id, Kill(s.actor("console:erin")))).ok
    await sim_env.settle()

    for job_id in jobs:
        job = await s.load(job_id)
        assert (job.state, job.rollback_verified, job.still_privileged) == (KILLED, True, ())
        bundle, _ = await s.bundle(job)
        report = verify_bundle(bundle, trust_for(s.keys))
        assert report.valid, report.reasons
    left = [g for g in sim_env.sim.active_grants() if g.role_id == role]
    assert not [g for g in left if g.principal_id in jobs.values()]
    assert not [r for r in caplog.records if "ESCALATION" in r.getMessage()]


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
class RealTools:
    """The real adapter; a subclass changes one tool's behaviour."""

    tools: Any

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        result: ToolResult = await self.tools.call(tool_name, arguments)
        return result

    async def find_marked_grants(self) -> list[Any]:
        found: list[Any] = await self.tools.find_marked_grants()
        return found


@dataclass
class HeldWrite(RealTools):
    """The planned CA write waits before its first request until the Kill cancels it: the
    Kill that lands between the last approval and the write reaching the tenant (a
    black-box run: the job ended `failed`, escalating an exclusion that had never been
    made, while the verifier called its rollback verified)."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, tool_name: str, arguments: Mapping[str, Any]) -> ToolResult:
        if tool_name == catalog.EXCLUDE_GROUP:
            self.entered.set()
            await asyncio.Event().wait()  # cancelled by the Kill's settle
        return await super().call(tool_name, arguments)


async def test_a_kill_before_the_ca_write_reaches_the_tenant_ends_killed_with_nothing_left(
    sim_env: SimEnv, caplog: pytest.LogCaptureFixture
) -> None:
    s = sim_env.service
    s.tools = held = HeldWrite(s.tools)
    policy = POLICY["id"]
    out = await s.request(
        alices_request(sim_env, "ca-exclusion", {"policy_id": policy, "group_id": GROUP})
    )
    assert out.ok, out
    for who in ("bob", "carol"):
        approval = Approve(s.actor(f"console:{who}"), out.result["plan_hash"])
        assert (await s.command("job-input", approval)).ok
    await asyncio.wait_for(held.entered.wait(), timeout=60)  # the write is on its way
    killed_at = sim_env.clock.now()
    assert (await s.command("job-input", Kill(s.actor("console:erin")))).ok
    await sim_env.settle()
    # No write to wait for: the rollback does not sit out the replication settle time.
    assert sim_env.clock.now() - killed_at < s.rules.replication_settle / 2

    job = await s.load("job-input")
    assert (job.state, job.rollback_verified, job.still_privileged) == (KILLED, True, ())
    assert not [r for r in caplog.records if "ESCALATION" in r.getMessage()]
    patched = [e for e in sim_env.sim.requests_log if e.method == "PATCH"]
    assert patched == []  # the tenant was never changed, and nothing was "restored"
    assert (
        GROUP not in sim_env.sim.directory.policies[policy]["conditions"]["users"]["excludeGroups"]
    )
    calls = [(r["tool_name"], r["result_status"]) for r in await tool_receipts(sim_env)]
    assert calls[:3] == [
        (catalog.EXCLUDE_GROUP, "error"),  # cancelled, receipted
        (catalog.RESTORE_CA, "success"),  # nothing of ours to undo
        (catalog.READ_CA, "success"),
    ]
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
