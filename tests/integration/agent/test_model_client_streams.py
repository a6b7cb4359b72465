"""The executor's model client reading streams over real HTTP (client -> proxy -> scripted
model): it reads them by the same SSE rules as the proxy's receipts, and only a stream that
``data: [DONE]`` closed without an error event is an answer. A stream cut off or failed
mid-answer is a ModelError, never a partial answer the executor acts on; the job still ends."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from bot.model_client import ModelReply, ProxyClient
from bot.scripted_controls import StreamShape
from bot.scripted_model import SCRIPTED_MODEL_ID
from engine import catalog
from engine.errors import ModelError
from engine.job import CLOSED
from engine.verify import verify_bundle
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import envelopes, model_receipts, tool_receipts
from tests.integration.agent.test_proxy import chat, quiet, token
from tests.support.engine_sim import trust_for

__all__ = ["quiet"]  # the fixture shared with test_proxy

OVERLOADED = {"error": {"message": "overloaded", "type": "server_error", "code": "server_error"}}


async def ask(env: AgentEnv) -> ModelReply:
    """One model turn through the proxy, as the executor makes it."""
    client = ProxyClient(env.proxy_url, SCRIPTED_MODEL_ID)
    try:
        return await client.chat(await token(env), chat()["messages"], [])
    finally:
        await client.close()


async def the_receipt(env: AgentEnv) -> Mapping[str, Any]:
    await env.settle()
    (receipt,) = await model_receipts(env, "job-a1")
    return receipt


# ------------------------------------------------------------ valid framings are answers


@pytest.mark.parametrize(
    "shape",
    [StreamShape(newline="\r"), StreamShape(multiline=True)],
    ids=["cr-line-ends", "multi-line-data"],
)
async def test_cr_line_ends_and_multi_line_data_are_read_as_the_answer(
    quiet: AgentEnv, shape: StreamShape
) -> None:
    """Lines that end in CR alone, and one event's JSON on several data lines, are valid
    SSE (the client read LF-ended lines, each data line as JSON on its own)."""
    quiet.scripted.shape = shape
    reply = await ask(quiet)
    assert str(reply.message["content"]).startswith("Simulated model")
    assert reply.tool_calls == ()
    assert reply.receipt == (await envelopes(quiet, "job-a1", "gateway_receipt"))[-1]


# ------------------------------------------------------------ cut or failed: ModelError


@pytest.mark.parametrize(
    "shape",
    [
        StreamShape(done=False),
        StreamShape(break_after=2),
        StreamShape(break_after=2, break_mid_event=True),
    ],
    ids=["no-done", "dropped-between-events", "dropped-mid-line"],
)
async def test_a_stream_cut_off_is_a_model_error_not_an_answer(
    quiet: AgentEnv, shape: StreamShape
) -> None:
    quiet.scripted.shape = shape
    with pytest.raises(ModelError, match=r"without data: \[DONE\]: the answer was cut off"):
        await ask(quiet)
    receipt = await the_receipt(quiet)
    assert receipt["metadata"]["complete"] is False


@pytest.mark.parametrize("named", [False, True], ids=["data-error", "event-error"])
async def test_an_error_event_mid_stream_is_a_model_error_naming_its_code(
    quiet: AgentEnv, named: bool
) -> None:
    quiet.scripted.shape = StreamShape(error=OVERLOADED, error_event=named)
    with pytest.raises(ModelError, match=r"failed mid-answer \(server_error\)$") as raised:
        await ask(quiet)
    assert "overloaded" not in str(raised.value)  # the code only, never the message
    receipt = await the_receipt(quiet)
    assert receipt["metadata"]["stream_error"] is True


# ------------------------------------------------------------ the executor, the job


@pytest.mark.parametrize(
    "shape",
    [StreamShape(done=False), StreamShape(error=OVERLOADED)],
    ids=["no-done", "error-event"],
)
async def test_the_executor_acts_on_no_partial_answer_and_the_job_still_ends(
    make_env: MakeEnv, shape: StreamShape, caplog: pytest.LogCaptureFixture
) -> None:
    """The first answer (the write's tool call) is cut off or fails: no tool call reaches
    the gateway, the agent stops, and the window's end closes the job with nothing granted
    and a bundle that verifies (the proxy's receipt says the answer was incomplete)."""
    caplog.set_level(logging.WARNING, "breakglass.agent")
    env = await make_env()
    env.scripted.shape = shape
    await approve(env)
    await env.settle()
    assert len(env.scripted.received) == 1  # the model was not asked again
    assert await tool_receipts(env, "job-a1") == []
    assert env.tenant.calls == []
    assert "agent for job-a1 stopped" in caplog.text
    env.clock.advance(minutes=31)
    await env.service.tick()
    await env.settle()
    job = await env.service.load("job-a1")
    assert job.state == CLOSED
    assert env.tenant.roles == set()
    assert catalog.WRITE_ROLE not in [name for name, _ in env.tenant.calls]
    (receipt,) = await model_receipts(env, "job-a1")
    assert receipt["metadata"]["complete"] is False
    report = verify_bundle((await env.service.bundle(job))[0], trust_for(env.service.keys))
    assert report.valid, report.reasons
