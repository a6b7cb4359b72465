"""Whole jobs run by the real OpenClaw, confined to our proxy and our MCP gateway."""

from __future__ import annotations

import json

from bot.openclaw_executor import OpenClawExecutor
from engine import catalog
from engine.job import ACTIVE
from tests.integration.agent.conftest import AgentEnv, approve


async def settle(env: AgentEnv, executor: OpenClawExecutor) -> None:
    await executor.wait_idle()
    await env.settle()


async def test_whole_job_through_openclaw(make_env) -> None:  # type: ignore[no-untyped-def]
    env, executor = await make_env()
    await approve(env)
    await settle(env, executor)
    for r in env.scripted.received:
        print(json.dumps(json.loads(r.body))[:3000])
    print(executor.outcomes)
    job = await env.service.load("job-a1")
    assert job.state == ACTIVE
    assert [c[0] for c in env.tenant.calls] == [catalog.WRITE_ROLE, catalog.READ_ROLE]
