"""Whole jobs driven by the scripted model through the real proxy, gateway and service."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.agent_prompt import alias
from engine import catalog
from engine.job import ACTIVE, CLOSED, KILLED
from engine.lifecycle import END_WRITE_FAILED, Kill
from engine.verify import verify_bundle
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import model_receipts, tool_receipts
from tests.support.engine_sim import ROLE_TARGETS, trust_for
from tests.support.waiting import eventually

ROLE = (ROLE_TARGETS["tenant_id"], ROLE_TARGETS["principal_id"], ROLE_TARGETS["role_definition_id"])


async def run_out_the_window(env: AgentEnv) -> None:
    env.clock.advance(minutes=31)
    await env.service.tick()
    await env.settle()


@pytest.mark.parametrize(
    ("stream", "in_process"),
    [(True, False), (False, False), (True, True)],
    ids=["stream-http", "json-http", "stream-in-process"],
)
async def test_whole_job_every_model_call_receipted_and_bundle_verifies(
    make_env: MakeEnv, stream: bool, in_process: bool
) -> None:
    env = await make_env(stream=stream, in_process=in_process)
    await approve(env)
    await env.settle()
    job = await env.service.load("job-a1")
    assert job.state == ACTIVE
    assert job.write_done
    assert job.verified_after_write
    assert ROLE in env.tenant.roles
    assert [c[0] for c in env.tenant.calls] == [catalog.WRITE_ROLE, catalog.READ_ROLE]
    await run_out_the_window(env)
    job = await env.service.load("job-a1")
    assert job.state == CLOSED
    assert env.tenant.roles == set()
    receipts = await model_receipts(env, "job-a1")
    assert len(receipts) == 3  # write, verification read, final answer
    assert {r["metadata"]["stream"] for r in receipts} == {stream}
    assert all(r["metadata"]["complete"] for r in receipts)
    assert all(r["tokens_input"] > 0 for r in receipts)
    # What the upstream received is byte for byte what the store kept and the receipt hashed.
    kept = [ex.request_body for ex in await env.store.exchanges("job-a1")]
    assert sorted(kept) == sorted(r.body for r in env.scripted.received)
    bundle, _ = await env.service.bundle(job)
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons
    assert report.summary["model_calls"] == 3


async def test_offered_tools_are_the_wpc_write_and_read_only(env: AgentEnv) -> None:
    await approve(env)
    await env.settle()
    first = env.scripted.received[0].body
    offered = [t["function"]["name"] for t in json.loads(first)["tools"]]
    assert offered == [alias(catalog.WRITE_ROLE), alias(catalog.READ_ROLE)]


async def test_injected_model_is_refused_killed_and_rolled_back(make_env: MakeEnv) -> None:
    env = await make_env(injected=True)
    await approve(env)
    await env.settle()
    job = await env.service.load("job-a1")
    assert job.state == KILLED
    assert job.end_reason == "unexpected_target_detected"
    assert env.tenant.roles == set()
    receipts = await tool_receipts(env, "job-a1")
    refused = [r for r in receipts if r["result_status"] == "error"]
    assert [r["tool_name"] for r in refused] == [catalog.WRITE_ROLE]
    # The rogue call never reached the tenant; the agent made no call after it.
    principals = [args.get("principal_id") for _, args in env.tenant.calls]
    assert "u-mallory-injected" not in principals
    calls = [(name, args.get("expect")) for name, args in env.tenant.calls]
    # The agent wrote; the kill came before its read, so the rollback runner first does the
    # planned read (the grant is there), then removes it and reads again (it is gone).
    assert calls == [
        (catalog.WRITE_ROLE, None),
        (catalog.READ_ROLE, "present"),
        (catalog.REMOVE_ROLE, None),
        (catalog.READ_ROLE, "absent"),
        (catalog.REVOKE_SESSIONS, None),  # the window's end contains, after the removal
        (catalog.READ_ACTIVITY, None),  # then what the privilege was used for (issue 17)
    ]
    assert job.verified_after_write is True
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons


async def test_kill_during_a_streaming_answer_cuts_the_stream_and_stops_the_run(
    env: AgentEnv,
) -> None:
    env.scripted.hold = asyncio.Event()  # the first answer stalls after its first chunk
    await approve(env)
    await eventually(lambda: env.scripted.streams_started == 1)
    killed = await env.service.command("job-a1", Kill(env.service.actor("console:dave")))
    assert killed.ok
    await eventually(lambda: env.scripted.streams_cut == 1)
    env.scripted.hold.set()
    await env.settle()
    job = await env.service.load("job-a1")
    assert job.state == KILLED
    assert env.scripted.streams_finished == 0
    assert len(env.scripted.received) == 1  # no further model call
    # No write was sent: one read shows nothing granted, so there is nothing to remove and
    # no elevated session to revoke.
    assert [c[0] for c in env.tenant.calls] == [catalog.READ_ROLE]
    assert job.rollback_verified is True
    assert all(r["tool_name"] != catalog.WRITE_ROLE for r in await tool_receipts(env, "job-a1"))
    (cut,) = await env.store.exchanges("job-a1")  # the bytes that passed before the kill
    assert cut.response_body.count(b"data: ") == 1


async def test_tool_call_in_flight_at_kill_is_receipted_and_never_half_applied(
    env: AgentEnv,
) -> None:
    env.tenant.gate = asyncio.Event()  # the write hangs in the tenant
    await approve(env)
    await eventually(lambda: bool(env.tenant.calls))
    killed = await env.service.command("job-a1", Kill(env.service.actor("console:dave")))
    assert killed.ok
    await env.settle()
    env.tenant.gate.set()
    job = await env.service.load("job-a1")
    assert job.state == KILLED
    assert env.tenant.roles == set()
    writes = [r for r in await tool_receipts(env, "job-a1") if r["tool_name"] == catalog.WRITE_ROLE]
    assert [w["result_status"] for w in writes] == ["error"]  # receipted as cancelled
    assert len(env.scripted.received) == 1  # the model was not asked again
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons


async def test_the_run_stops_at_the_step_limit(make_env: MakeEnv) -> None:
    env = await make_env(max_steps=1)
    await approve(env)
    await env.settle()
    assert len(env.scripted.received) == 1
    assert [c[0] for c in env.tenant.calls] == [catalog.WRITE_ROLE]
    assert (await env.service.load("job-a1")).verified_after_write is None


async def test_a_call_after_the_window_is_refused_and_the_run_ends(env: AgentEnv) -> None:
    env.scripted.hold = asyncio.Event()
    await approve(env)
    await eventually(lambda: env.scripted.streams_started == 1)
    env.clock.advance(minutes=31)  # the window ends while the model is answering
    env.scripted.hold.set()
    await env.settle()
    # The refused write ends the job at once; the rollback's one read finds nothing granted,
    # and a window that granted nothing has no session to revoke.
    assert [(c[0], c[1].get("expect")) for c in env.tenant.calls] == [
        (catalog.READ_ROLE, "absent"),
    ]
    refused, read = await tool_receipts(env, "job-a1")
    assert (refused["tool_name"], refused["result_status"]) == (catalog.WRITE_ROLE, "error")
    assert (read["tool_name"], read["result_status"]) == (catalog.READ_ROLE, "success")
    assert len(env.scripted.received) == 1  # no model call after the window
    job = await env.service.load("job-a1")
    assert (job.state, job.end_reason) == (CLOSED, END_WRITE_FAILED)


class WriteRaises:
    """The memory tenant, whose write raises what no adapter should let out."""

    def __init__(self, env: AgentEnv) -> None:
        self.tenant = env.tenant

    async def call(self, tool_name: str, arguments: Any) -> Any:
        if tool_name == catalog.WRITE_ROLE:
            self.tenant.calls.append((tool_name, dict(arguments)))
            raise RuntimeError("adapter bug")
        return await self.tenant.call(tool_name, arguments)

    async def find_marked_grants(self) -> Any:
        return await self.tenant.find_marked_grants()


async def test_a_failed_agent_write_ends_the_window_and_the_job_closes(env: AgentEnv) -> None:
    env.service.tools = WriteRaises(env)
    await approve(env)
    await env.settle()
    job = await env.service.load("job-a1")
    assert job.state == CLOSED, job
    assert job.end_reason == END_WRITE_FAILED
    writes = [r for r in await tool_receipts(env, "job-a1") if r["tool_name"] == catalog.WRITE_ROLE]
    assert [w["result_status"] for w in writes] == ["error"]
    # The write may have landed, so the rollback removed and read until replication could
    # no longer hide it: nothing there to undo; the window's end then revoked the
    # principal's sessions all the same.
    calls = [c[0] for c in env.tenant.calls]
    assert calls[:3] == [catalog.WRITE_ROLE, catalog.REMOVE_ROLE, catalog.READ_ROLE]
    revoked = calls.index(catalog.REVOKE_SESSIONS)
    assert set(calls[1:revoked]) == {catalog.REMOVE_ROLE, catalog.READ_ROLE}
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons
