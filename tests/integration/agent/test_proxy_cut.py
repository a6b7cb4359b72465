"""The model proxy when a call is cut short: a token revoked while the body comes or while the
upstream answers, an upstream that read the request and never answered, a client that hung
up while the upstream held its request. Whatever may have reached the upstream is receipted
(incomplete, with what passed) and kept; nothing is served after the revocation."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.loopback import serve
from bot.model_proxy import CST_HEADER
from bot.proxy_config import UpstreamConfig
from bot.scripted_model import SCRIPTED_PROVIDER
from engine.cst import TokenKind
from engine.errors import InvalidToken
from engine.lifecycle import Kill
from engine.ports import Revocation
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import model_receipts
from tests.integration.agent.test_proxy import chat, code, http, post, quiet, token
from tests.support.waiting import eventually

__all__ = ["http", "quiet"]  # fixtures shared with test_proxy

# Bounds a wait only so that a proxy that never cuts fails the test instead of hanging it:
# with the fix the wait ends as soon as the proxy has done its work.
NEVER = 30.0
HOW = ["kill", "another replica"]


async def revoke(env: AgentEnv, how: str) -> None:
    """A Kill on this replica, or the agent token revoked by another one (only the store
    knows: on SQLite no NOTIFY is heard)."""
    if how == "kill":
        assert (await env.service.command("job-a1", Kill(env.service.actor("console:dave")))).ok
        return
    agent = (await env.service.load("job-a1")).token(TokenKind.AGENT)
    assert agent is not None
    await env.store.revoke(Revocation(agent.jti, "job-a1", env.clock.now, {}))


@dataclass
class Holding:
    """An upstream that reads each request and answers only once ``answer`` is set."""

    url: str = ""
    received: asyncio.Event = field(default_factory=asyncio.Event)
    answer: asyncio.Event = field(default_factory=asyncio.Event)
    cut: asyncio.Event = field(default_factory=asyncio.Event)  # its caller went away

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.received.set()
        try:
            await self.answer.wait()
        except asyncio.CancelledError:
            self.cut.set()
            raise
        return web.json_response({"id": "late", "choices": []})


@pytest.fixture
async def holding() -> AsyncIterator[Holding]:
    upstream = Holding()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.handle)
    site = await serve(app)
    upstream.url = site.url + "/v1"
    yield upstream
    upstream.answer.set()  # nothing left waiting when the site closes
    await site.close()


async def held_env(make_env: MakeEnv, upstream: Holding, **config: Any) -> AgentEnv:
    env = await make_env(
        agent=False,
        proxy={"upstream": UpstreamConfig(SCRIPTED_PROVIDER, upstream.url, **config)},
    )
    await approve(env)
    return env


async def receipted(env: AgentEnv) -> None:
    """Until the proxy has kept the call's bytes (with its receipt, in one transaction): a
    handler whose client hung up writes them, and this test cannot await it."""
    deadline = time.monotonic() + NEVER
    while not await env.store.exchanges("job-a1"):
        assert time.monotonic() < deadline, "the call was never receipted"
        await asyncio.sleep(0.01)
    await env.settle()


async def cut_receipt(env: AgentEnv) -> tuple[bool, int] | None:
    """(complete, upstream_status) of the job's one model receipt; None once the job has
    ended (a Kill that rolled back at once closes its chain: only the kept bytes remain)."""
    receipts = await model_receipts(env, "job-a1")
    if (await env.service.load("job-a1")).resolved:
        assert receipts == []
        return None
    (receipt,) = receipts
    return receipt["metadata"]["complete"], receipt["metadata"]["upstream_status"]


# ------------------------------------------------------------ revoked while it runs


@pytest.mark.parametrize("how", HOW)
async def test_a_token_revoked_while_the_body_comes_is_refused_before_the_upstream(
    quiet: AgentEnv, how: str
) -> None:
    cst = await token(quiet)
    body = json.dumps(chat()).encode()

    async def slowly() -> AsyncIterator[bytes]:
        # Read only after the token was checked: it is revoked between the two halves.
        yield body[:10]
        await revoke(quiet, how)
        yield body[10:]

    with pytest.raises(InvalidToken) as refused:
        await quiet.proxy.admission.admit(cst, slowly())
    assert refused.value.reason == "TOKEN_REVOKED"
    assert quiet.scripted.received == []


@pytest.mark.parametrize("how", HOW)
async def test_a_call_waiting_for_its_answer_is_cut_when_its_token_is_revoked(
    make_env: MakeEnv,
    http: aiohttp.ClientSession,
    holding: Holding,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    env = await held_env(make_env, holding)
    call = asyncio.ensure_future(post(http, env, chat(), await token(env)))
    await holding.received.wait()
    await revoke(env, how)
    assert code(await asyncio.wait_for(call, NEVER)) == (401, "TOKEN_INVALID")
    await asyncio.wait_for(holding.cut.wait(), NEVER)  # the upstream connection was closed
    holding.answer.set()  # too late: nobody is listening any more
    await env.settle()
    (kept,) = await env.store.exchanges("job-a1")
    assert kept.request_body == json.dumps(chat(), separators=(",", ":")).encode()
    assert kept.response_body == b""
    assert await cut_receipt(env) in (None, (False, 0))
    assert "cut: its token was revoked" in caplog.text


@pytest.mark.parametrize("how", HOW)
async def test_a_stream_in_flight_ends_when_its_token_is_revoked(
    quiet: AgentEnv, http: aiohttp.ClientSession, how: str
) -> None:
    quiet.scripted.hold = asyncio.Event()  # the upstream stalls after its first chunk
    headers = {CST_HEADER: await token(quiet)}
    url = quiet.proxy_url + "/chat/completions"
    async with http.post(url, json=chat(stream=True), headers=headers) as r:
        first = await r.content.readuntil(b"\n\n")
        await revoke(quiet, how)
        rest = await asyncio.wait_for(r.content.read(), NEVER)  # the stream ends
    assert b"data: " not in rest  # nothing of the model's after the revocation
    assert rest.startswith(b": receipt ")
    await eventually(lambda: quiet.scripted.streams_cut == 1, NEVER)
    assert quiet.scripted.streams_finished == 0
    await quiet.settle()
    (kept,) = await quiet.store.exchanges("job-a1")
    assert kept.response_body == first
    assert await cut_receipt(quiet) in (None, (False, 200))
    envelope = json.loads(rest.removeprefix(b": receipt "))
    if envelope is not None:  # the receipt that was chained
        assert envelope["payload"] == (await model_receipts(quiet, "job-a1"))[0]


# ------------------------------------------------------- forwarded, never answered


async def test_an_upstream_that_read_the_request_and_timed_out_is_receipted(
    make_env: MakeEnv,
    http: aiohttp.ClientSession,
    holding: Holding,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    env = await held_env(make_env, holding, read_timeout_seconds=0.1)  # it never answers
    assert code(await post(http, env, chat(), await token(env))) == (502, "UPSTREAM_BROKE_OFF")
    await env.settle()
    assert await cut_receipt(env) == (False, 0)
    (kept,) = await env.store.exchanges("job-a1")
    assert (kept.request_body, kept.response_body) == (
        json.dumps(chat(), separators=(",", ":")).encode(),
        b"",
    )
    assert "forwarded, no answer: read timeout" in caplog.text
    assert "not forwarded" not in caplog.text


async def test_a_client_that_hung_up_while_the_upstream_held_its_request_is_receipted(
    make_env: MakeEnv, http: aiohttp.ClientSession, holding: Holding
) -> None:
    env = await held_env(make_env, holding)
    call = asyncio.ensure_future(post(http, env, chat(), await token(env)))
    await holding.received.wait()
    call.cancel()  # the client hangs up before any answer
    await asyncio.gather(call, return_exceptions=True)
    await asyncio.wait_for(holding.cut.wait(), NEVER)  # and the upstream is cut
    await receipted(env)
    assert await cut_receipt(env) == (False, 0)
