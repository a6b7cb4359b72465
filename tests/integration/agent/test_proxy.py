"""The model proxy on its own: authentication, WPC model statements, routes, redaction,
receipts in answers and streams, retention. No agent runs: the tests are the client."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.loopback import serve
from bot.model_proxy import CST_HEADER, RECEIPT_HEADER
from bot.proxy_config import UpstreamConfig, fal_openrouter
from bot.redaction import placeholder, secret_hash
from bot.scripted_model import SCRIPTED_MODEL_ID, SCRIPTED_PROVIDER, ScriptedModel
from engine.cst import TokenKind
from engine.lifecycle import Kill
from engine.ports import Revocation
from engine.wpc import ModelAllowance
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import envelopes, model_receipts, nothing_forwarded

Answer = tuple[int, Any]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def quiet(make_env: MakeEnv) -> AgentEnv:
    """An approved, active job and no agent: the test makes the model calls."""
    env = await make_env(agent=False)
    await approve(env)
    return env


def chat(content: str = "hello", model: str = SCRIPTED_MODEL_ID, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def token(env: AgentEnv, kind: str = TokenKind.AGENT) -> str:
    return env.service.token_for(await env.service.load("job-a1"), kind)


async def post(http: aiohttp.ClientSession, env: AgentEnv, body: Any, cst: str | None) -> Answer:
    headers = {CST_HEADER: cst} if cst is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(env.proxy_url + "/chat/completions", data=data, headers=headers) as r:
        return r.status, await r.json()


def code(answer: Answer) -> tuple[int, str]:
    return answer[0], answer[1]["error"]["code"]


async def test_json_answer_carries_the_chained_receipt(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(http, quiet, chat(temperature=0.2), await token(quiet))
    assert status == 200
    assert answer["model"] == SCRIPTED_MODEL_ID
    assert answer["system_fingerprint"].startswith("simulated")
    chained = await envelopes(quiet, "job-a1", "gateway_receipt")
    assert answer["_receipt_envelope"] == chained[-1]
    (receipt,) = await model_receipts(quiet, "job-a1")
    assert (receipt["provider"], receipt["model"]) == (SCRIPTED_PROVIDER, SCRIPTED_MODEL_ID)
    assert receipt["metadata"] == {
        "stream": False,
        "complete": True,
        "upstream_status": 200,
        "usage_reported": True,
        "redactions": 0,
        "redaction_hashes": [],
    }


async def test_stream_is_passed_through_as_it_arrives_and_ends_with_the_receipt(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    quiet.scripted.hold = asyncio.Event()  # the upstream stalls after its first chunk
    body = chat(stream=True, stream_options={"include_usage": True})
    headers = {CST_HEADER: await token(quiet)}
    async with http.post(quiet.proxy_url + "/chat/completions", json=body, headers=headers) as r:
        assert r.headers[RECEIPT_HEADER].startswith("gr_job-a1_")
        first = await r.content.readuntil(b"\n\n")
        assert first.startswith(b"data: ")
        assert quiet.scripted.streams_finished == 0  # it reached us while the upstream waits
        quiet.scripted.hold.set()
        rest = await r.content.read()
    received = first + rest
    data, _, trailer = received.rpartition(b": receipt ")
    assert data.endswith(b"data: [DONE]\n\n")
    envelope = json.loads(trailer)
    assert envelope == (await envelopes(quiet, "job-a1", "gateway_receipt"))[-1]
    (kept,) = await quiet.store.exchanges("job-a1")
    assert kept.response_body == data  # every byte as received, nothing added or lost
    (receipt,) = await model_receipts(quiet, "job-a1")
    assert receipt["tokens_output"] > 0


async def test_revoked_token_is_refused_by_the_proxy_and_the_gateway(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await token(quiet)
    assert (await quiet.service.command("job-a1", Kill(quiet.service.actor("console:dave")))).ok
    await quiet.settle()
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    assert code(await post(http, quiet, chat(), agent)) == (401, "TOKEN_INVALID")
    assert "TOKEN_REVOKED" in caplog.text
    job = await quiet.service.load("job-a1")
    write = job.plan.payload["metadata"]["breakglass"]["action"]
    refused = await quiet.gateway.call("job-a1", agent, write["tool"], write["arguments"])
    assert (refused.allowed, refused.reason) == (False, "TOKEN_INVALID")
    assert quiet.scripted.received == []
    assert quiet.tenant.roles == set()


async def test_token_revoked_only_in_the_store_is_refused(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    job = await quiet.service.load("job-a1")
    cst = await token(quiet)
    agent = job.token(TokenKind.AGENT)
    assert agent is not None
    # Revoked by another replica or the CLI: this process's fast path does not know it.
    await quiet.store.revoke(Revocation(agent.jti, "job-a1", quiet.clock.now, {}))
    assert code(await post(http, quiet, chat(), cst)) == (401, "TOKEN_INVALID")
    assert quiet.scripted.received == []


async def test_expired_missing_forged_and_rollback_tokens_are_refused(
    quiet: AgentEnv, http: aiohttp.ClientSession
) -> None:
    agent = await token(quiet)
    forged = agent[:-4] + ("AAAA" if not agent.endswith("AAAA") else "BBBB")
    assert code(await post(http, quiet, chat(), None)) == (401, "TOKEN_INVALID")
    assert code(await post(http, quiet, chat(), forged)) == (401, "TOKEN_INVALID")
    assert (await quiet.service.command("job-a1", Kill(quiet.service.actor("console:dave")))).ok
    await quiet.settle()
    job = await quiet.service.load("job-a1")
    rollback = quiet.service.token_for(job, TokenKind.ROLLBACK)
    assert code(await post(http, quiet, chat(), rollback)) == (401, "TOKEN_INVALID")
    quiet.clock.advance(minutes=31)
    assert code(await post(http, quiet, chat(), agent)) == (401, "TOKEN_INVALID")
    assert quiet.scripted.received == []


async def test_model_outside_the_wpc_is_refused_and_nothing_is_forwarded(
    quiet: AgentEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    answer = await post(http, quiet, chat(model="gpt-4o"), await token(quiet))
    assert code(answer) == (403, "MODEL_NOT_ALLOWED")
    assert quiet.scripted.received == []
    await nothing_forwarded(quiet, "job-a1")
    assert "MODEL_NOT_ALLOWED" in caplog.text


async def test_a_wpc_without_a_model_statement_allows_no_model(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    env = await make_env(agent=False, allowed=ModelAllowance("other", "other-model"))
    await approve(env)
    assert code(await post(http, env, chat(), await token(env))) == (403, "MODEL_NOT_ALLOWED")
    assert env.scripted.received == []


async def test_malformed_and_oversized_bodies_are_refused_and_logged_without_content(
    make_env: MakeEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    env = await make_env(agent=False, proxy={"max_request_bytes": 4096})
    await approve(env)
    cst = await token(env)
    duplicated = b'{"model": "m", "sk-body-secret": 1, "sk-body-secret": 2}'
    assert code(await post(http, env, duplicated, cst)) == (400, "INVALID_REQUEST")
    assert code(await post(http, env, {"model": SCRIPTED_MODEL_ID}, cst)) == (
        400,
        "INVALID_REQUEST",
    )
    assert code(await post(http, env, chat("x" * 5000), cst)) == (413, "REQUEST_TOO_LARGE")
    assert env.scripted.received == []
    refusals = [r.getMessage() for r in caplog.records if "model call refused" in r.getMessage()]
    assert [m.split(" (")[0] for m in refusals] == [
        "model call refused: INVALID_REQUEST",
        "model call refused: INVALID_REQUEST",
        "model call refused: REQUEST_TOO_LARGE",
    ]
    assert "sk-body-secret" not in caplog.text
    assert "xxxx" not in caplog.text
    assert cst not in caplog.text


async def test_configured_secrets_never_reach_the_upstream_and_the_redaction_is_receipted(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    secret = "hunter2-tenant-client-secret"
    env = await make_env(agent=False, proxy={"redact": (secret, "unused-secret")})
    await approve(env)
    body = chat(f"the key is {secret}")
    body["messages"].append({"role": "user", "content": [{"type": "text", "text": secret}]})
    status, _ = await post(http, env, body, await token(env))
    assert status == 200
    (received,) = env.scripted.received
    assert secret.encode() not in received.body
    assert received.body.count(placeholder(secret).encode()) == 2
    (kept,) = await env.store.exchanges("job-a1")
    assert kept.request_body == received.body
    (receipt,) = await model_receipts(env, "job-a1")
    assert receipt["metadata"]["redactions"] == 2
    assert receipt["metadata"]["redaction_hashes"] == [secret_hash(secret)]


async def test_keys_and_the_fal_openrouter_route(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    router = ScriptedModel()
    default = ScriptedModel()
    router_site, default_site = await serve(router.app()), await serve(default.app())
    try:
        env = await make_env(
            agent=False,
            allowed=ModelAllowance("openrouter", "vendor/model-x"),
            proxy={
                "upstream": UpstreamConfig("openai", default_site.url + "/v1", "sk-test"),
                "openrouter": fal_openrouter(router_site.url + "/v1", "fal-test-key"),
            },
        )
        await approve(env)
        cst = await token(env)
        status, _ = await post(http, env, chat(model="openrouter/vendor/model-x"), cst)
        refused = await post(http, env, chat(model="vendor/model-x"), cst)  # provider openai
    finally:
        await router_site.close()
        await default_site.close()
    assert status == 200
    (received,) = router.received
    assert received.authorization == "Key fal-test-key"
    assert json.loads(received.body)["model"] == "vendor/model-x"
    assert code(refused) == (403, "MODEL_NOT_ALLOWED")
    assert default.received == []
    (receipt,) = await model_receipts(env, "job-a1")
    assert (receipt["provider"], receipt["model"]) == ("openrouter", "vendor/model-x")


async def test_bearer_key_goes_to_an_openai_compatible_upstream(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    upstream = ScriptedModel()
    site = await serve(upstream.app())
    try:
        env = await make_env(
            agent=False,
            proxy={"upstream": UpstreamConfig(SCRIPTED_PROVIDER, site.url + "/v1", "sk-test")},
        )
        await approve(env)
        status, _ = await post(http, env, chat(), await token(env))
    finally:
        await site.close()
    assert status == 200
    assert [r.authorization for r in upstream.received] == ["Bearer sk-test"]


async def test_unreachable_upstream_is_a_502_and_nothing_is_receipted(
    make_env: MakeEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    gone = await serve(web.Application())
    await gone.close()  # its port now refuses connections
    env = await make_env(
        agent=False, proxy={"upstream": UpstreamConfig(SCRIPTED_PROVIDER, gone.url + "/v1")}
    )
    await approve(env)
    assert code(await post(http, env, chat(), await token(env))) == (502, "UPSTREAM_UNAVAILABLE")
    await nothing_forwarded(env, "job-a1")
    assert "not forwarded: connection refused" in caplog.text


async def test_kept_bodies_are_purged_after_the_retention_and_receipts_stay(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    env = await make_env(agent=False, proxy={"retention": timedelta(days=7)})
    await approve(env)
    assert (await post(http, env, chat(), await token(env)))[0] == 200
    assert await env.proxy.purge_expired() == 0
    env.clock.advance(days=8)
    assert await env.proxy.purge_expired() == 1
    assert await env.store.exchanges("job-a1") == []
    assert len(await envelopes(env, "job-a1", "gateway_receipt")) == 1
