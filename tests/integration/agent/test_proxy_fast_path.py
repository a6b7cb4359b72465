"""The model proxy's fast path keeps every check and every byte: a CST whose signature was
checked on an earlier call is still refused once revoked, killed, expired or altered, and a
JSON answer comes back as the upstream sent it, with the signed receipt appended."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.loopback import serve
from bot.model_proxy import CST_HEADER
from bot.proxy_config import UpstreamConfig
from bot.scripted_model import SCRIPTED_PROVIDER
from engine.cst import TokenKind
from engine.encoding import b64u_decode, b64u_encode
from engine.lifecycle import Kill
from engine.ports import Revocation
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import envelopes, model_receipts
from tests.integration.agent.test_proxy import chat, code, http, post, quiet, token

__all__ = ["http", "quiet"]  # fixtures shared with test_proxy


async def used_once(env: AgentEnv, session: aiohttp.ClientSession) -> str:
    """The job's agent token, after one call it was admitted to (its signature is kept)."""
    cst = await token(env)
    assert (await post(session, env, chat(), cst))[0] == 200
    return cst


async def assert_refused_and_nothing_done(
    env: AgentEnv,
    session: aiohttp.ClientSession,
    cst: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    assert code(await post(session, env, chat(), cst)) == (401, "TOKEN_INVALID")
    assert f"model call refused: {reason}" in caplog.text  # the precise reason is logged
    assert len(env.scripted.received) == 1  # only the first call was forwarded
    assert len(await envelopes(env, "job-a1", "gateway_receipt")) == 1
    assert len(await env.store.exchanges("job-a1")) == 1


async def test_a_token_used_before_is_refused_once_revoked_in_the_store_only(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cst = await used_once(quiet, http)
    agent = (await quiet.service.load("job-a1")).token(TokenKind.AGENT)
    assert agent is not None
    # Another replica (or the CLI) revoked it: only the store knows.
    await quiet.store.revoke(Revocation(agent.jti, "job-a1", quiet.clock.now, {}))
    await assert_refused_and_nothing_done(quiet, http, cst, "TOKEN_REVOKED", caplog)


async def test_a_token_used_before_is_refused_after_a_kill(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cst = await used_once(quiet, http)
    assert (await quiet.service.command("job-a1", Kill(quiet.service.actor("console:dave")))).ok
    await quiet.settle()
    await assert_refused_and_nothing_done(quiet, http, cst, "TOKEN_REVOKED", caplog)


async def test_a_token_used_before_is_refused_once_expired(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    cst = await used_once(quiet, http)
    claims = json.loads(b64u_decode(cst.split(".")[1]))
    quiet.clock.advance(seconds=claims["exp"] - claims["iat"] + 60)
    await assert_refused_and_nothing_done(quiet, http, cst, "TOKEN_EXPIRED", caplog)


@pytest.mark.parametrize("part", ["claims", "signature"])
async def test_an_altered_copy_of_a_token_used_before_is_refused(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, part: str
) -> None:
    cst = await used_once(quiet, http)
    header, payload, signature = cst.split(".")
    if part == "claims":  # a longer life, under the signature of the genuine token
        claims = json.loads(b64u_decode(payload))
        payload = b64u_encode(json.dumps(claims | {"exp": claims["exp"] + 86400}).encode())
    else:
        signature = b64u_encode(bytes(b ^ 1 for b in b64u_decode(signature)))
    altered = f"{header}.{payload}.{signature}"
    await assert_refused_and_nothing_done(quiet, http, altered, "TOKEN_SIGNATURE_INVALID", caplog)


# ---------------------------------------------------------------- answers as sent

SPACED = (
    '{ "id": "a-1",  "choices": [{"message": {"role": "assistant", "content": "grüße ✓"}}],\n'
    '  "usage": {"prompt_tokens": 3, "completion_tokens": 2} }\n'
).encode()
FORGED = b'{"id":"a-2","_receipt_envelope":{"forged":true}}'
EMPTY = b"{}"
UTF16 = '{"id":"a-3"}'.encode("utf-16-le")  # JSON the proxy re-encodes (it is not UTF-8)


@pytest.fixture
async def fixed_answer(request: pytest.FixtureRequest) -> AsyncIterator[tuple[bytes, str]]:
    """An upstream that answers every call with the bytes of the test's parameter."""
    body: bytes = request.param

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    site = await serve(app)
    yield body, site.url + "/v1"
    await site.close()


async def call_with_fixed_answer(
    make_env: MakeEnv, session: aiohttp.ClientSession, fixed: tuple[bytes, str]
) -> tuple[AgentEnv, bytes]:
    """One call through the proxy to the fixed upstream: the answer is the upstream's with our
    chained receipt (and nothing else) added, and the body kept is the one received."""
    sent, base_url = fixed
    env = await make_env(
        agent=False, proxy={"upstream": UpstreamConfig(SCRIPTED_PROVIDER, base_url)}
    )
    await approve(env)
    headers = {CST_HEADER: await token(env)}
    data = json.dumps(chat()).encode()
    async with session.post(env.proxy_url + "/chat/completions", data=data, headers=headers) as r:
        assert (r.status, r.content_type) == (200, "application/json")
        raw = await r.read()
    (chained,) = await envelopes(env, "job-a1", "gateway_receipt")
    assert json.loads(raw) == json.loads(sent) | {"_receipt_envelope": chained}
    assert raw.count(b'"_receipt_envelope"') == 1  # an upstream's own is replaced, not kept
    (kept,) = await env.store.exchanges("job-a1")
    assert kept.response_body == sent  # what was hashed is what came, not what went on
    return env, raw


@pytest.mark.parametrize("fixed_answer", [SPACED, EMPTY], indirect=True)
async def test_a_json_answer_keeps_its_bytes_and_gains_the_receipt(
    make_env: MakeEnv, http: aiohttp.ClientSession, fixed_answer: tuple[bytes, str]
) -> None:
    env, raw = await call_with_fixed_answer(make_env, http, fixed_answer)
    sent = fixed_answer[0]
    head = sent.rstrip()[:-1] + (b"," if sent != EMPTY else b"")
    assert raw.startswith(head + b'"_receipt_envelope":')
    (receipt,) = await model_receipts(env, "job-a1")
    usage = (receipt["tokens_input"], receipt["tokens_output"])
    assert usage == ((3, 2) if sent == SPACED else (0, 0))


@pytest.mark.parametrize("fixed_answer", [FORGED, UTF16], indirect=True)
async def test_an_answer_that_cannot_be_appended_to_is_re_encoded_with_our_receipt(
    make_env: MakeEnv, http: aiohttp.ClientSession, fixed_answer: tuple[bytes, str]
) -> None:
    _, raw = await call_with_fixed_answer(make_env, http, fixed_answer)
    assert not raw.startswith(fixed_answer[0][:-1])  # a new encoding, not the upstream's bytes
