"""Whole jobs run by the real OpenClaw, confined to our proxy and our MCP gateway.

The scripted model drives OpenClaw through the receipting proxy; OpenClaw calls tools
through the MCP gateway, which forwards them to the tool gateway. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from adapters.openclaw.names import openclaw_name
from bot.openclaw_executor import OpenClawExecutor
from bot.scripted_turns import INJECTED_PRINCIPAL
from engine import catalog
from engine.job import ACTIVE, CLOSED, KILLED
from engine.lifecycle import Kill
from engine.verify import verify_bundle
from tests.integration.agent.conftest import AgentEnv, approve
from tests.integration.agent.receipts import model_receipts, tool_receipts
from tests.integration.openclaw.conftest import MakeEnv, needs_openclaw
from tests.support.engine_sim import ROLE_TARGETS, trust_for

pytestmark = [needs_openclaw, pytest.mark.slow]
ROLE = (ROLE_TARGETS["tenant_id"], ROLE_TARGETS["principal_id"], ROLE_TARGETS["role_definition_id"])
OFFERED = [openclaw_name(catalog.WRITE_ROLE), openclaw_name(catalog.READ_ROLE)]


async def settle(env: AgentEnv, executor: OpenClawExecutor) -> None:
    """Until OpenClaw has exited and the service's background work (a halt) is done."""
    while True:
        await executor.wait_idle()
        await env.settle()
        process = executor.process("job-a1")
        if process is None or not process.running:
            return


async def while_running(executor: OpenClawExecutor, condition: Callable[[], bool]) -> None:
    """Wait for ``condition``; OpenClaw ending first fails the test (no clock involved)."""
    while not condition():
        process = executor.process("job-a1")
        assert process is not None
        assert process.running, "OpenClaw ended before the condition held"
        await asyncio.sleep(0.01)


def offered_tools(env: AgentEnv) -> list[list[str]]:
    """The tool names OpenClaw offered the model, request by request."""
    requests = [json.loads(r.body) for r in env.scripted.received]
    return [sorted(t["function"]["name"] for t in r.get("tools") or []) for r in requests]


async def test_whole_job_through_openclaw_every_call_receipted(make_env: MakeEnv) -> None:
    env, executor = await make_env()
    await approve(env)
    await settle(env, executor)
    job = await env.service.load("job-a1")
    assert (job.state, job.write_done, job.verified_after_write) == (ACTIVE, True, True)
    assert [c[0] for c in env.tenant.calls] == [catalog.WRITE_ROLE, catalog.READ_ROLE]
    outcome = executor.outcomes["job-a1"]
    assert (outcome.ok, outcome.tool_calls, outcome.tool_failures) == (True, 2, 0)
    # Only our two tools were ever offered: no exec, no file, web or session tool.
    assert offered_tools(env) == [sorted(OFFERED)] * len(env.scripted.received)
    # Every model call went through our proxy, with the job's CST, and was receipted.
    receipts = await model_receipts(env, "job-a1")
    assert len(receipts) == len(env.scripted.received) == 3  # write, read, final answer
    assert not list((executor.config.home / "openclaw").iterdir())  # the run's HOME is gone
    env.clock.advance(minutes=31)
    await env.service.tick()
    await settle(env, executor)
    job = await env.service.load("job-a1")
    assert job.state == CLOSED
    assert env.tenant.roles == set()
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons


async def test_injected_model_is_refused_killed_and_openclaw_stopped(make_env: MakeEnv) -> None:
    env, executor = await make_env(injected=True)
    await approve(env)
    await settle(env, executor)
    job = await env.service.load("job-a1")
    assert (job.state, job.end_reason) == (KILLED, "unexpected_target_detected")
    assert env.tenant.roles == set()
    principals = [args.get("principal_id") for _, args in env.tenant.calls]
    assert INJECTED_PRINCIPAL not in principals
    refused = [r for r in await tool_receipts(env, "job-a1") if r["result_status"] == "error"]
    assert [r["tool_name"] for r in refused] == [catalog.WRITE_ROLE]
    outcome = executor.outcomes["job-a1"]
    assert outcome.halted
    assert not outcome.ok
    process = executor.process("job-a1")
    assert process is not None
    assert not process.running
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons


async def test_kill_mid_turn_stops_openclaw_and_the_next_call_is_refused(
    make_env: MakeEnv,
) -> None:
    env, executor = await make_env()
    env.scripted.hold = asyncio.Event()  # the first answer stalls after its first chunk
    await approve(env)
    await while_running(executor, lambda: env.scripted.streams_started == 1)
    token = env.agent_token(await env.service.load("job-a1"))
    killed = await env.service.command("job-a1", Kill(env.service.actor("console:dave")))
    assert killed.ok
    await settle(env, executor)
    process = executor.process("job-a1")
    assert process is not None
    assert not process.running
    assert executor.outcomes["job-a1"].halted
    env.scripted.hold.set()
    job = await env.service.load("job-a1")
    assert job.state == KILLED
    assert catalog.WRITE_ROLE not in [c[0] for c in env.tenant.calls]
    assert len(env.scripted.received) == 1  # no model call after the kill
    late = await env.gateway.call("job-a1", token, catalog.WRITE_ROLE, dict(ROLE_TARGETS))
    assert (late.allowed, late.reason) == (False, "TOKEN_INVALID")
    assert ROLE not in env.tenant.roles
