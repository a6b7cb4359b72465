"""The tenant stops accepting our app in the middle of a job (docs/notes/tenant-refuses-app.md):
its client secret expires or is deleted (AADSTS7000222, AADSTS7000215), its service principal
is disabled (AADSTS7000112), an administrator removes its Graph permission (403
Authorization_RequestDenied), or the token endpoint cannot be reached. Every approved job
must still end (DESIGN §10): within the rollback budget, ``failed`` with one ESCALATION line
naming what is still privileged, a terminal record, a bundle that verifies, the channel
told, no secret anywhere, nothing retried for ever. And once the app is accepted again,
what the job left is removed.

The real service against the strict simulated tenant (``app_refused.py``). A token already
issued stays valid after the refusal, as in Entra: each test lets the app's token expire
(10 minutes) so that the refusal bites where it says."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from adapters.graph.simulated import Fault
from bot.rollback_run import MAX_ATTEMPTS_PER_STEP
from engine import catalog, chain
from engine.job import FAILED, KILLED, Job, describe_grant
from engine.lifecycle import Kill
from engine.timeutil import parse_iso
from engine.verify import verify_bundle
from tests.integration.invariant.checks import FAILURE_CODES, JobLog, posts_bound
from tests.integration.service.app_refused import (
    REFUSALS,
    TARGETS,
    WRITE_PERMISSION,
    Harness,
    Refusal,
    SetupError,
    escalations,
    given,
    harness,
)
from tests.integration.service.simulated import IDS, ROLE, tool_receipts
from tests.support.engine_sim import trust_for

TEMPLATES = list(TARGETS)
BY_NAME = {r.name: r for r in REFUSALS}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as built:
        yield built


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def ids(refusal: Refusal) -> str:
    return refusal.name.replace(" ", "-")


async def refused_before_the_end(h: Harness, template: str, refusal: Refusal) -> Job:
    """(a) Granted; 12 minutes in (the app's first token has expired) the tenant stops
    accepting the app; the window ends at its time (30 min) and the job runs out."""
    await h.approved(template)
    h.schedule.advance(12 * 60)
    refusal.apply(h.sim, template)
    h.schedule.advance(18 * 60)
    await h.service.tick()
    return await h.run_out()


async def kill_refused(h: Harness, template: str, refusal: Refusal) -> Job:
    """Granted (``h.approved``); 11 minutes in (the app's token has expired) the tenant
    refuses the app; Erin kills the window."""
    h.schedule.advance(11 * 60)
    refusal.apply(h.sim, template)
    given((await h.service.command("job-input", Kill(h.service.actor("console:erin")))).ok, "kill")
    await h.env.settle()
    job: Job = await h.service.load("job-input")
    return job


async def assert_ended_failed_naming(
    h: Harness, job: Job, records: list[logging.LogRecord], secrets: list[str]
) -> None:
    """The first law for a job whose rollback the tenant refused, as far as it holds today."""
    s = h.service
    assert job.state == FAILED, job.state
    grant = describe_grant(job)
    assert grant in job.still_privileged
    (line,) = escalations(records)  # exactly one
    assert grant in line
    told = [e for e in h.env.chat.events if e.kind == "escalate"]
    assert [e.detail["still_privileged"] for e in told] == [list(job.still_privileged)]
    assert "finish" in h.env.chat.kinds()
    assert len(h.env.chat.events) <= posts_bound(job, JobLog(commands=3))
    chained = await s.store.chain("job-input")
    assert chained[-1].event["event_type"] == chain.RUN_END
    bundle, _ = await s.bundle(job)
    report = verify_bundle(bundle, trust_for(s.keys))
    assert report.reason_codes, report.reasons  # it says the job failed...
    assert set(report.reason_codes) <= FAILURE_CODES, report.reasons  # ...and nothing else
    assert [r.getMessage() for r in records if r.exc_info] == []  # no traceback, not one
    said = [r.getMessage() for r in records] + [repr(e) for e in h.env.chat.events]
    said += [json.dumps(r.envelope) for r in chained] + [json.dumps(bundle)]
    for secret in secrets:
        assert not [text for text in said if secret in text]


async def assert_nothing_retried_after(h: Harness) -> None:
    """Once failed, nothing calls the tenant or adds to the job again (an hour of ticks)."""
    sent, chained = len(h.sim.requests_log), len(await h.service.store.chain("job-input"))
    for _ in range(12):
        h.schedule.advance(300)
        await h.service.tick()
        await h.env.settle()
    assert len(h.sim.requests_log) == sent
    assert len(await h.service.store.chain("job-input")) == chained


# ----------------------------------------------------------- (a) refused during the window


@pytest.mark.parametrize("refusal", REFUSALS, ids=ids)
@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_window_ending_after_the_app_was_refused_ends_failed_naming_the_grant(
    h: Harness, template: str, refusal: Refusal, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [h.sim.client_secret]
    job = await refused_before_the_end(h, template, refusal)
    ended = job.ended_at
    assert ended is not None
    budget_end = h.service.rules.rollback_budget + timedelta(minutes=1)
    assert h.schedule.clock.now() <= parse_iso(ended) + budget_end  # within its budget
    refused = [r for r in await tool_receipts(h.env) if r["result_status"] == "error"]
    assert 2 < job.rollback_attempts <= MAX_ATTEMPTS_PER_STEP  # retried, and bounded
    assert refused  # every refusal receipted
    await assert_ended_failed_naming(h, job, caplog.records, [*secrets, h.sim.client_secret])
    # A role's PIM schedule ended it by itself at the window's end, while the job names it
    # as held until that end at the latest (below); nothing ends an exclusion but its removal.
    assert tenant_holds(h, template) == (template == "ca-exclusion")
    await assert_nothing_retried_after(h)


@pytest.mark.parametrize("refusal", REFUSALS, ids=ids)
@pytest.mark.parametrize("template", TEMPLATES)
async def test_the_escalation_names_why_the_tenant_refused_the_app(
    h: Harness, template: str, refusal: Refusal, caplog: pytest.LogCaptureFixture
) -> None:
    job = await refused_before_the_end(h, template, refusal)
    given(job.state == FAILED, f"the job failed: {job.state}")
    lines = escalations(caplog.records)
    given(len(lines) == 1 and describe_grant(job) in lines[0], f"one escalation names it: {lines}")
    assert refusal.reason in lines[0], lines[0]
    (told,) = [e.detail for e in h.env.chat.events if e.kind == "escalate"]
    assert refusal.reason in told.get("refused", ""), told  # the channel is told why too


async def test_an_escalated_role_says_when_its_pim_schedule_ends_it(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    job = await refused_before_the_end(h, "entra-role", BY_NAME["secret expired"])
    given(job.state == FAILED, f"the job failed: {job.state}")
    (ours,) = [
        a
        for a in h.sim.directory.assignments
        if a.principal_id == IDS["dave"] and a.role_id == ROLE
    ]
    given(ours.end is not None, "the grant has a PIM schedule end")
    assert ours.end is not None
    lines = escalations(caplog.records)
    given(len(lines) == 1, f"one escalation: {lines}")
    assert ours.end.strftime("%Y-%m-%dT%H:%M:%SZ") in lines[0], lines[0]


# ------------------------------------------------------------ (b) refused during the rollback


async def test_a_secret_expiring_while_pim_delays_the_removal_ends_failed_naming_the_role(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Killed in PIM's first five minutes: the runner contains (revokes the sessions), says
    # when removal becomes possible and waits; meanwhile the secret expires, and the token
    # the removal needs is refused.
    secrets = [h.sim.client_secret]
    job = await role_refused_while_pim_delays(h)
    assert job.state == FAILED
    calls = [(r["tool_name"], r["result_status"]) for r in await tool_receipts(h.env)]
    refused_last = len(calls) - 1 - calls[::-1].index((catalog.REMOVE_ROLE, "error"))
    assert calls.index((catalog.REVOKE_SESSIONS, "success")) < refused_last  # contained first
    assert parse_iso(str(job.ended_at)) + h.service.rules.rollback_budget <= h.schedule.clock.now()
    await assert_ended_failed_naming(h, job, caplog.records, [*secrets, h.sim.client_secret])
    assert tenant_holds(h, "entra-role")  # until its PIM schedule ends
    await assert_nothing_retried_after(h)


async def role_refused_while_pim_delays(h: Harness) -> Job:
    """Killed a minute after the write, in PIM's first five minutes (the removal waits
    until 5 minutes after the write); the secret expires a minute later, and the app's token
    (from the request, 10 minutes before the removal may run) before the removal runs."""
    await h.approved("entra-role", approve_after=7 * 60)
    earliest, latest = token_expiry(h)
    h.schedule.advance(60)
    given(h.clock.now() < earliest - timedelta(minutes=1), "killed while the token is valid")
    h.schedule.at(earliest - timedelta(minutes=1), h.sim.expire_secret)
    given((await h.service.command("job-input", Kill(h.service.actor("console:erin")))).ok, "kill")
    job = await h.run_out()
    delayed = [e for e in h.env.chat.events if e.detail.get("event") == "removal_delayed"]
    given(len(delayed) == 1, "PIM delayed the removal and the channel was told")
    given(parse_iso(delayed[0].detail["not_before"]) > latest, "the removal waited past it")
    return job


async def test_a_secret_expiring_between_two_restore_attempts_ends_failed_naming_the_exclusion(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Killed just before the app's token expires; the first restores meet a Graph outage
    # (503) until the token has expired, and the secret expired meanwhile.
    secrets = [h.sim.client_secret]
    await h.approved("ca-exclusion")
    earliest, latest = token_expiry(h)
    h.schedule.advance((earliest - h.clock.now()).total_seconds() - 1)
    h.sim.add_fault(Fault("unavailable", method="PATCH", path="/conditionalAccess/", times=10**6))
    h.schedule.at(earliest - timedelta(seconds=0.5), h.sim.expire_secret)
    h.schedule.at(latest + timedelta(seconds=1), h.sim.core.faults.clear)  # Graph is back
    given((await h.service.command("job-input", Kill(h.service.actor("console:erin")))).ok, "kill")
    job = await h.run_out()
    errors = [
        r["result_hash_b64u"]
        for r in await tool_receipts(h.env)
        if r["tool_name"] == catalog.RESTORE_CA and r["result_status"] == "error"
    ]
    given(len(errors) > 2, "the restore was tried before and after the refusal")
    await assert_ended_failed_naming(h, job, caplog.records, [*secrets, h.sim.client_secret])
    assert tenant_holds(h, "ca-exclusion")
    await assert_nothing_retried_after(h)


# ------------------------------------------------------------------ fixed again later


@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_secret_replaced_during_the_rollback_and_a_restart_end_it_verified(
    h: Harness, template: str, caplog: pytest.LogCaptureFixture
) -> None:
    await h.approved(template)
    h.schedule.advance(11 * 60)  # the app's token has expired
    BY_NAME["secret expired"].apply(h.sim, template)
    h.schedule.hold_at(h.clock.now() + timedelta(minutes=2))  # 2 minutes into the rollback
    given((await h.service.command("job-input", Kill(h.service.actor("console:erin")))).ok, "kill")
    await asyncio.wait_for(h.schedule.held.wait(), timeout=60)  # bounds a hang only
    refused = [r for r in await tool_receipts(h.env) if r["result_status"] == "error"]
    given(len(refused) > 2, "the rollback's steps were refused")
    h.sim.replace_secret()  # the operator puts a new secret in place and restarts
    await h.restart()
    job = await h.run_out()
    assert (job.state, job.rollback_verified, job.still_privileged) == (KILLED, True, ())
    assert escalations(caplog.records) == []
    assert not tenant_holds(h, template)
    report = verify_bundle((await h.service.bundle(job))[0], trust_for(h.service.keys))
    assert report.valid, report.reasons


@pytest.mark.parametrize("template", TEMPLATES)
async def test_a_permission_restored_during_the_rollback_is_used_before_its_budget_ends(
    h: Harness, template: str
) -> None:
    await h.approved(template)
    h.schedule.at(
        h.schedule.clock.now() + timedelta(minutes=12),
        lambda: h.sim.restore_permission(WRITE_PERMISSION[template]),
    )
    job = await kill_refused(h, template, BY_NAME["permission removed"])
    denied = [r for r in await tool_receipts(h.env) if r["result_status"] == "error"]
    given(bool(denied), "the rollback's first steps were refused")
    job = await h.run_out()
    assert (job.state, job.rollback_verified) == (KILLED, True), job.still_privileged
    assert not tenant_holds(h, template)


async def test_the_sweep_removes_a_role_a_failed_rollback_left_once_the_secret_is_replaced(
    h: Harness,
) -> None:
    job = await role_refused_while_pim_delays(h)
    removed = await swept_once_the_secret_is_replaced(h, job, "entra-role")
    assert removed == [
        f"directory role {ROLE} assigned to {IDS['dave']} by breakglass job job-input"
    ]
    assert not tenant_holds(h, "entra-role")


async def test_the_sweep_removes_an_exclusion_a_failed_rollback_left_once_the_secret_is_replaced(
    h: Harness,
) -> None:
    job = await refused_before_the_end(h, "ca-exclusion", BY_NAME["secret expired"])
    removed = await swept_once_the_secret_is_replaced(h, job, "ca-exclusion")
    assert len(removed) == 1, removed
    assert not tenant_holds(h, "ca-exclusion")


async def test_what_the_sweep_removes_is_told_in_the_channel_that_saw_the_escalation(
    h: Harness,
) -> None:
    job = await role_refused_while_pim_delays(h)
    given(job.state == FAILED and tenant_holds(h, "entra-role"), "failed, the role still held")
    h.sim.replace_secret()
    await h.restart()
    before = len(h.env.chat.events)
    removed = await h.service.sweep()
    given(len(removed) == 1 and not tenant_holds(h, "entra-role"), f"swept: {removed}")
    await h.service.tasks.settle()  # chat is told beside the sweep, never in its way
    told = [e for e in h.env.chat.events[before:] if e.job.get("job_id") == "job-input"]
    assert told, "nobody was told that the escalated grant is gone"


# ---------------------------------------------------------------------------- helpers


async def swept_once_the_secret_is_replaced(h: Harness, job: Job, template: str) -> list[str]:
    """``job`` failed with its grant held; an administrator replaces the app's secret and
    the process restarts: what its reconciliation sweep removes."""
    given(job.state == FAILED and tenant_holds(h, template), "failed, the grant still held")
    h.sim.replace_secret()
    await h.restart()
    return await h.service.sweep()


def token_expiry(h: Harness) -> tuple[datetime, datetime]:
    """When the app's first token expires: not before the first, not after the second."""
    if h.token_expiry is None:
        raise SetupError("no token was fetched by the request")
    earliest, latest = h.token_expiry
    given(latest - earliest < timedelta(minutes=1), "the token's expiry is known to a minute")
    return earliest, latest


def tenant_holds(h: Harness, template: str) -> bool:
    """Does the tenant (read directly) still hold the job's grant?"""
    if template == "entra-role":
        return any(g.principal_id == IDS["dave"] for g in h.sim.active_grants())
    policy = h.sim.directory.policies[TARGETS[template]["policy_id"]]
    return TARGETS[template]["group_id"] in policy["conditions"]["users"]["excludeGroups"]
