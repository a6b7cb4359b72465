"""Whole jobs through the service: store, gateway, runbook executor, recording tenant/chat."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from adapters import chat_actions
from bot.clock import SteadyClock
from bot.job_commands import chat_ports
from cards.actions import CardAction, Verb
from engine import catalog
from engine.cst import TokenKind
from engine.job import ACTIVE, CLOSED, FAILED, KILLED, PENDING, Job
from engine.lifecycle import Approve, Kill, Request
from engine.verify import verify_bundle
from tests.integration.service.conftest import Env, opened_env
from tests.support.engine_sim import ROLE_TARGETS, T0, console_request, trust_for
from tests.support.fakes import Clock

HANG_GUARD_SECONDS = 120.0


def request(job_id: str = "job-s1", **kw: Any) -> Request:
    return console_request(job_id, **kw)


async def approved(env: Env, job_id: str = "job-s1") -> str:
    s = env.service
    out = await s.request(request(job_id, actor=s.actor("console:alice")), key=f"req:{job_id}")
    assert out.ok, out
    plan = out.result["plan_hash"]
    assert (await s.command(job_id, Approve(s.actor("console:bob"), plan), key=f"a1:{job_id}")).ok
    assert (await s.command(job_id, Approve(s.actor("console:carol"), plan), key=f"a2:{job_id}")).ok
    await env.settle()
    return plan


async def ticked(env: Env, minutes: float) -> Job:
    """``minutes`` on, the service's tick and its work settled: job ``job-s1`` as it is then."""
    env.clock.advance(minutes=minutes)
    await env.service.tick()
    await env.settle()
    return await env.service.load("job-s1")


def role() -> tuple[str, str, str]:
    return (
        ROLE_TARGETS["tenant_id"],
        ROLE_TARGETS["principal_id"],
        ROLE_TARGETS["role_definition_id"],
    )


async def test_whole_job_grants_then_rolls_back_at_window_end(env: Env) -> None:
    await approved(env)
    assert role() in env.tenant.roles
    job = await env.service.load("job-s1")
    assert job.state == ACTIVE
    assert job.write_done
    assert job.verified_after_write
    job = await ticked(env, minutes=31)
    assert job.state == CLOSED, job
    assert env.tenant.roles == set()
    assert job.rollback_verified is True
    bundle, _ = await env.service.bundle(job)
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons
    assert "finish" in env.chat.kinds()
    written = json.loads((env.service.bundle_dir / "job-s1.bundle.json").read_text())  # type: ignore[operator]
    assert written == bundle


async def test_replayed_commands_are_no_ops_with_the_same_result(env: Env) -> None:
    s = env.service
    first = await s.request(request(actor=s.actor("console:alice")), key="req:1")
    again = await s.request(request(actor=s.actor("console:alice")), key="req:1")
    assert again.replayed
    assert again.result == first.result
    plan = first.result["plan_hash"]
    one = await s.command("job-s1", Approve(s.actor("console:bob"), plan), key="click:1")
    dup = await s.command("job-s1", Approve(s.actor("console:bob"), plan), key="click:1")
    assert dup.replayed
    assert dup.result == one.result
    assert len(await env.store.approvals("job-s1")) == 1


async def test_a_button_pressed_again_answers_with_the_jobs_state_now(env: Env) -> None:
    """The second press of one button is not applied again, but its answer must not say
    "pending_approval" of a job that was killed meanwhile."""
    s, jobs = env.service, chat_ports(env.service).jobs
    out = await s.request(request(actor=s.actor("console:alice")))
    approve = CardAction(Verb.APPROVE, "job-s1", out.result["plan_hash"])
    first = await chat_actions.act(jobs, approve, s.actor("console:bob"))
    assert first.result["state"] == PENDING
    assert (await s.command("job-s1", Kill(s.actor("console:alice")))).ok
    await env.settle()
    again = await chat_actions.act(jobs, approve, s.actor("console:bob"))
    assert (again.ok, again.replayed, again.result["state"]) == (True, True, KILLED)
    assert len(await env.store.approvals("job-s1")) == 1


async def test_two_approvals_at_the_same_instant_resolve_to_one_activation(env: Env) -> None:
    s = env.service
    out = await s.request(request(actor=s.actor("console:alice")), key="req")
    plan = out.result["plan_hash"]
    results = await asyncio.gather(
        s.command("job-s1", Approve(s.actor("console:bob"), plan), key="b"),
        s.command("job-s1", Approve(s.actor("console:carol"), plan), key="c"),
        s.command("job-s1", Approve(s.actor("console:dave"), plan), key="d"),
    )
    await env.settle()
    assert [r.ok for r in results].count(True) == 2  # the third finds the job active
    job = await s.load("job-s1")
    assert job.state == ACTIVE
    assert len([t for t in job.tokens if t.kind == TokenKind.AGENT]) == 1
    assert env.tenant.calls.count((catalog.WRITE_ROLE, env.tenant.calls[0][1])) == 1


async def test_same_person_via_second_identity_and_ambiguous_identity_are_refused(env: Env) -> None:
    s = env.service
    out = await s.request(request(actor=s.actor("console:alice")), key="req")
    plan = out.result["plan_hash"]
    assert (await s.command("job-s1", Approve(s.actor("console:bob"), plan))).ok
    before = await env.store.chain("job-s1")
    second = await s.command("job-s1", Approve(s.actor("slack:UBOB2"), plan))
    ambiguous = await s.command("job-s1", Approve(s.actor("console:twin"), plan))
    assert (second.reason, ambiguous.reason) == ("DUPLICATE_APPROVER", "IDENTITY_UNRESOLVED")
    job = await s.load("job-s1")
    assert job.state == PENDING
    assert await env.store.chain("job-s1") == before
    assert [r["reason"] for r in job.refusals] == ["DUPLICATE_APPROVER", "IDENTITY_UNRESOLVED"]
    assert env.tenant.calls == []


class Gate(asyncio.Event):
    """Holds writes in the tenant and says when the first one has reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.reached.set()
        return await super().wait()


async def test_kill_racing_an_in_flight_call(env: Env) -> None:
    env.tenant.gate = gate = Gate()  # the write hangs in the tenant
    s = env.service
    out = await s.request(request(actor=s.actor("console:alice")), key="req")
    plan = out.result["plan_hash"]
    await s.command("job-s1", Approve(s.actor("console:bob"), plan))
    await s.command("job-s1", Approve(s.actor("console:carol"), plan))
    # Wait for the work itself (the write is in flight), not for an amount of time; the
    # bound only turns a hang into a failure.
    await asyncio.wait_for(gate.reached.wait(), HANG_GUARD_SECONDS)
    assert env.tenant.calls[0][0] == catalog.WRITE_ROLE
    agent_token = s.token_for(await s.load("job-s1"), TokenKind.AGENT)
    killed = await s.command("job-s1", Kill(s.actor("console:dave")))
    assert killed.ok
    after = await env.gateway.call("job-s1", agent_token, *_planned_write(await s.load("job-s1")))
    assert not after.allowed
    assert after.reason == "TOKEN_INVALID"
    env.tenant.gate.set()
    await env.settle()
    job = await s.load("job-s1")
    assert job.state == KILLED
    assert env.tenant.roles == set()
    report = verify_bundle((await s.bundle(job))[0], trust_for(s.keys))
    assert report.valid, report.reasons


def _planned_write(job: Any) -> tuple[str, dict[str, Any]]:
    action = job.plan.payload["metadata"]["breakglass"]["action"]
    return action["tool"], action["arguments"]


async def killed_while_removals_fail(env: Env, failures: int) -> Job:
    """An approved job killed while the tenant refuses its next ``failures`` removals."""
    await approved(env)
    env.tenant.fail_removals = failures
    await env.service.command("job-s1", Kill(env.service.actor("console:bob")))
    await env.settle()
    return await env.service.load("job-s1")


async def test_rollback_retries_then_succeeds(env: Env) -> None:
    job = await killed_while_removals_fail(env, 2)
    assert job.state == KILLED
    assert env.tenant.roles == set()
    assert job.rollback_attempts == 3


async def test_rollback_that_keeps_failing_ends_failed_and_escalates(env: Env) -> None:
    job = await killed_while_removals_fail(env, 99)
    assert job.state == FAILED
    assert job.still_privileged
    assert "u-alice" in job.still_privileged[0]
    escalations = [e for e in env.chat.events if e.kind == "escalate"]
    assert escalations
    assert escalations[0].detail["still_privileged"] == list(job.still_privileged)


async def test_chat_down_does_not_stop_the_job_and_posts_wait_in_the_outbox(env: Env) -> None:
    env.chat.down = True
    await approved(env)
    assert (await ticked(env, minutes=31)).state == CLOSED
    assert env.tenant.roles == set()
    queued = await env.store.due("console", env.clock.now)
    assert queued
    assert {q.payload["kind"] for q in queued} >= {"finish", "receipts"}


async def test_reconciliation_sweep_removes_grants_of_closed_jobs_only(env: Env) -> None:
    await approved(env, "job-open")
    leftover = ("t-x", "u-eve", "r-ga")
    env.tenant.roles.add(leftover)  # a grant a crash left behind for a job that has ended
    env.tenant.markers[leftover] = "job-closed"
    eve = ROLE_TARGETS | {"principal_id": "u-eve"}  # its own grant: one open job per grant
    asked = await env.service.request(
        request("job-closed", actor=env.service.actor("console:alice"), targets=eve)
    )
    assert asked.ok, asked
    await env.service.command("job-closed", Kill(env.service.actor("console:dave")))
    removed = await env.service.sweep()
    assert removed == ["u-eve holds r-ga"]
    assert env.tenant.roles == {role()}  # the open job's grant stays until its window ends


async def test_a_late_call_after_the_job_ended_is_refused_for_its_token(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Once a job is resolved its jtis leave this replica's fast path; the job's own record
    still says revoked, so the token is refused first, whatever the arguments say. Nothing
    is written for it: a leaked token's calls rewrote the ended job's row, one each."""
    s = env.service
    await approved(env)
    agent_token = s.token_for(await s.load("job-s1"), TokenKind.AGENT)
    assert (await s.command("job-s1", Kill(s.actor("console:dave")))).ok
    job = await ticked(env, minutes=6)  # PIM allows the removal; the rollback finishes
    assert job.state == KILLED
    chain_before = len(await s.store.chain("job-s1"))
    stored = await s.store.load_job("job-s1")
    caplog.set_level(logging.INFO, logger="breakglass")
    caplog.clear()
    for _ in range(3):
        late = await env.gateway.call("job-s1", agent_token, catalog.WRITE_ROLE, {"junk": True})
        assert (late.allowed, late.reason) == (False, "TOKEN_INVALID")
    assert env.tenant.roles == set()
    assert len(await s.store.chain("job-s1")) == chain_before  # a closed chain takes nothing
    assert await s.store.load_job("job-s1") == stored  # nor does the job
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("breakglass")]
    refused = f"refused {catalog.WRITE_ROLE} on job-s1: TOKEN_REVOKED"
    assert lines == [f"{refused} (not receipted: ALREADY_RESOLVED)"] * 3  # one line each


async def test_a_request_too_few_may_approve_is_refused_recorded_and_stores_nothing(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Carol asks for Bob's role: of the approvers Bob, Carol and Dave only Dave may approve
    it (ADR 0018), so nobody is asked and nothing is stored."""
    s = env.service
    caplog.set_level(logging.INFO, logger="breakglass")
    targets = {**ROLE_TARGETS, "principal_id": "u-bob"}
    asked = request("job-few", actor=s.actor("console:carol"), targets=targets)
    out = await s.request(asked)
    assert (out.ok, out.reason) == (False, "TOO_FEW_APPROVERS")
    assert await s.store.list_jobs() == []
    assert env.chat.events == []
    lines = [r.getMessage() for r in caplog.records if r.name == "breakglass.service"]
    assert lines == ["refused request by console:carol: TOO_FEW_APPROVERS"]


async def test_a_step_back_of_the_system_clock_does_not_stretch_a_window(tmp_path: Path) -> None:
    """Ten minutes into a 30-minute window, NTP steps the host's clock back an hour: the
    window still ends 30 minutes after it began (the service counts on), not 90."""
    step = timedelta(0)

    def steady(true: Clock) -> SteadyClock:  # the manual clock is true time
        return SteadyClock(lambda: true() - step, lambda: (true() - T0).total_seconds())

    async with opened_env(tmp_path, clock_of=steady) as env:
        await approved(env)
        env.clock.advance(minutes=10)
        step = timedelta(hours=1)
        await env.service.tick()
        job = await ticked(env, minutes=21)
        assert job.state == CLOSED, job
        assert env.tenant.roles == set()
        bundle, _ = await env.service.bundle(job)
        assert verify_bundle(bundle, trust_for(env.service.keys)).valid
