"""Every window end contains what the window touched: after the removal, the principal's
sessions are revoked (done, expiry, kill), credentials the agent created are removed by the
steps their writes derived, all receipted; a revocation that never succeeds ends the job
``failed`` with an escalation naming it. Memory tenant, test clock, real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.gateway_service import GatewayOutcome
from engine import catalog
from engine.access import access_from_config
from engine.containment import MAX_DERIVED_CREDENTIALS, step_of
from engine.cst import TokenKind
from engine.job import ACTIVE, CLOSED, FAILED, KILLED, Job
from engine.lifecycle import Approve, Done, Kill, Rules
from engine.receipts import TOOL_RECEIPT, content_hash
from engine.verify import verify_bundle
from tests.integration.service.conftest import Env, opened_env
from tests.integration.service.test_jobs import approved, role
from tests.support.engine_sim import ROLE_TARGETS, console_request, trust_for

APPROVERS = frozenset({"u-bob", "u-carol", "u-dave"})
APP = "4f6c1c1e-7a51-5c57-9d43-2b2cf0d8a9e1"
TENANT, PRINCIPAL, _ = role()


def rotating_rules() -> Rules:
    table = {
        "rotate_credentials": ["application_password"],
        "principals": [ROLE_TARGETS["principal_id"]],
        "roles": [ROLE_TARGETS["role_definition_id"]],
    }
    return Rules(approvers=APPROVERS, access=access_from_config({"entra-role": table}, {}))


@pytest.fixture
async def rotating(tmp_path: Path) -> AsyncIterator[Env]:
    async with opened_env(tmp_path, rules=rotating_rules()) as env:
        yield env


async def receipted(env: Env) -> list[tuple[str, str]]:
    """(tool, status) of every tool receipt of the job, in chain order."""
    return [
        (r.envelope["payload"]["tool_name"], r.envelope["payload"]["result_status"])
        for r in await env.store.chain("job-s1")
        if r.envelope is not None and r.envelope["envelope_type"] == TOOL_RECEIPT
    ]


async def verified(env: Env, job: Job) -> None:
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons


async def end(env: Env, how: str) -> Job:
    s = env.service
    if how == "done":
        assert (await s.command("job-s1", Done(s.actor("console:alice")))).ok
    elif how == "kill":
        assert (await s.command("job-s1", Kill(s.actor("console:dave")))).ok
    else:
        env.clock.advance(minutes=31)
        await s.tick()
    await env.settle()
    return await s.load("job-s1")


@pytest.mark.parametrize(
    ("how", "outcome"), [("done", CLOSED), ("expiry", CLOSED), ("kill", KILLED)]
)
async def test_every_window_end_revokes_sessions_after_the_removal(
    env: Env, how: str, outcome: str
) -> None:
    await approved(env)
    job = await end(env, how)
    assert job.state == outcome, job
    assert env.tenant.roles == set()
    assert env.tenant.revoked == [PRINCIPAL]
    tools = [tool for tool, status in await receipted(env) if status == "success"]
    ended = [catalog.REMOVE_ROLE, catalog.READ_ROLE, catalog.REVOKE_SESSIONS, catalog.READ_ACTIVITY]
    assert tools[-4:] == ended  # removal, its read, containment, then the activity read
    await verified(env, job)


async def test_a_window_that_granted_nothing_has_nothing_to_contain(env: Env) -> None:
    env.service.executor = None  # no executor: the write is never sent
    await approved(env)
    job = await end(env, "kill")
    assert (job.state, job.write_sent, job.still_privileged) == (KILLED, False, ())
    assert env.tenant.revoked == []  # no session of the principal was ever elevated
    assert catalog.REVOKE_SESSIONS not in [tool for tool, _ in await receipted(env)]
    await verified(env, job)


async def test_a_revocation_that_keeps_failing_ends_failed_naming_it(env: Env) -> None:
    await approved(env)
    env.tenant.fail_revocations = 10_000
    job = await end(env, "kill")
    assert job.state == FAILED, job
    assert env.tenant.roles == set()  # the removal itself was done and verified
    named = f"sign-in sessions of principal {PRINCIPAL} not revoked in tenant {TENANT}"
    assert job.still_privileged == (named,)
    (escalation,) = [e for e in env.chat.events if e.kind == "escalate"]
    assert escalation.detail["still_privileged"] == [named]
    # Retried within the rollback budget, like a removal, not given up after one try.
    revocations = [c for c in env.tenant.calls if c[0] == catalog.REVOKE_SESSIONS]
    assert len(revocations) > 5
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.reason_codes == ["BREAKGLASS_CONTAINMENT_MISSING"]
    assert "the job failed naming it" in report.reasons[0]


async def test_a_revocation_failing_a_while_is_retried_and_the_job_closes(env: Env) -> None:
    await approved(env)
    env.tenant.fail_revocations = 3
    job = await end(env, "done")
    assert job.state == CLOSED, job
    assert env.tenant.revoked == [PRINCIPAL]
    await verified(env, job)


async def try_add_password(env: Env) -> GatewayOutcome:
    """The agent, through the gateway with its own token, asks to add a secret to an app."""
    job = await env.service.load("job-s1")
    token = env.service.token_for(job, TokenKind.AGENT)
    args = {"tenant_id": TENANT, "application_id": APP, "job_id": "job-s1"}
    return await env.gateway.call("job-s1", token, catalog.ADD_APP_PASSWORD, args)


async def add_password(env: Env) -> dict[str, Any]:
    outcome = await try_add_password(env)
    assert outcome.allowed, outcome
    return dict(outcome.result)


async def test_a_password_added_in_the_window_is_removed_at_its_end(rotating: Env) -> None:
    env = rotating
    await approved(env)
    added = await add_password(env)
    assert env.tenant.passwords[APP] == {added["key_id"]}
    job = await env.service.load("job-s1")
    (record,) = job.derived_rollback
    step = step_of(record)
    assert step is not None
    assert step["arguments"]["key_id"] == added["key_id"]
    job = await end(env, "expiry")
    assert job.state == CLOSED, job
    assert env.tenant.passwords[APP] == set()
    tools = [tool for tool, status in await receipted(env) if status == "success"]
    assert tools[-3:] == [
        catalog.REMOVE_APP_PASSWORD,
        catalog.REVOKE_SESSIONS,
        catalog.READ_ACTIVITY,
    ]
    bundle, _ = await env.service.bundle(job)
    assert bundle["payload"]["metadata"]["breakglass"]["run"]["derived_rollback"]
    await verified(env, job)


async def test_a_credential_past_the_limit_is_refused_and_the_job_goes_on(rotating: Env) -> None:
    env = rotating
    await approved(env)
    for _ in range(MAX_DERIVED_CREDENTIALS):
        await add_password(env)
    keys, calls = set(env.tenant.passwords[APP]), len(env.tenant.calls)
    outcome = await try_add_password(env)
    assert (outcome.allowed, outcome.reason) == (False, "CREDENTIAL_LIMIT")
    assert env.tenant.passwords[APP] == keys  # nothing sent to the tenant
    assert len(env.tenant.calls) == calls
    (receipt,) = [
        r.envelope["payload"]
        for r in await env.store.chain("job-s1")
        if r.envelope is not None and r.envelope["payload"].get("receipt_id") == outcome.receipt_id
    ]
    assert receipt["tool_name"] == catalog.ADD_APP_PASSWORD
    assert receipt["result_hash_b64u"] == content_hash({"refused": "CREDENTIAL_LIMIT"})
    job = await env.service.load("job-s1")
    assert job.state == ACTIVE  # like TOOL_NOT_ALLOWED: refused, not killed
    assert len(job.derived_rollback) == MAX_DERIVED_CREDENTIALS
    job = await end(env, "done")
    assert job.state == CLOSED, job
    assert env.tenant.passwords[APP] == set()
    await verified(env, job)


async def test_concurrent_credential_writes_do_not_pass_the_limit_together(
    rotating: Env,
) -> None:
    env = rotating
    await approved(env)
    tries = MAX_DERIVED_CREDENTIALS + 2
    outcomes = await asyncio.gather(*(try_add_password(env) for _ in range(tries)))
    assert sum(o.allowed for o in outcomes) == MAX_DERIVED_CREDENTIALS
    assert {o.reason for o in outcomes if not o.allowed} == {"CREDENTIAL_LIMIT"}
    assert len(env.tenant.passwords[APP]) == MAX_DERIVED_CREDENTIALS
    job = await env.service.load("job-s1")
    assert len(job.derived_rollback) == MAX_DERIVED_CREDENTIALS


async def test_without_rotation_listed_the_agent_cannot_add_a_password(env: Env) -> None:
    await approved(env)
    job = await env.service.load("job-s1")
    token = env.service.token_for(job, TokenKind.AGENT)
    args = {"tenant_id": TENANT, "application_id": APP, "job_id": "job-s1"}
    outcome = await env.gateway.call("job-s1", token, catalog.ADD_APP_PASSWORD, args)
    assert not outcome.allowed
    assert env.tenant.passwords == {}
    assert (catalog.ADD_APP_PASSWORD, "error") in await receipted(env)
    assert (await env.service.load("job-s1")).derived_rollback == ()


async def test_a_ca_exclusion_revokes_its_group_users_sessions_at_the_end(env: Env) -> None:
    s = env.service
    targets = {"tenant_id": TENANT, "policy_id": "ca-1", "group_id": "g-bg"}
    alice = s.actor("console:alice")
    req = console_request("job-s1", template="ca-exclusion", targets=targets, actor=alice)
    out = await s.request(req, key="req:ca")
    assert out.ok, out
    plan = out.result["plan_hash"]
    for who in ("bob", "carol"):
        assert (await s.command("job-s1", Approve(s.actor(f"console:{who}"), plan))).ok
    await env.settle()
    assert env.tenant.excluded == {(TENANT, "ca-1", "g-bg")}
    job = await end(env, "done")
    assert job.state == CLOSED, job
    assert env.tenant.excluded == set()
    assert env.tenant.revoked == ["group:g-bg"]
    tools = [tool for tool, status in await receipted(env) if status == "success"]
    ended = [catalog.RESTORE_CA, catalog.READ_CA, catalog.REVOKE_GROUP_SESSIONS]
    assert tools[-4:] == [*ended, catalog.READ_EXCLUSION_ACTIVITY]
    await verified(env, job)
