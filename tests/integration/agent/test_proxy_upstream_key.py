"""The proxy's upstream key never reaches the agent, a receipt, the kept bodies or a log,
though the upstream quotes it: OpenAI's 401 ``invalid_api_key`` names the key it refused by
its first eight and last four characters (docs/model.md, "What an upstream may send"), and
any error answer may quote it. The scripted model plays the upstream over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from adapters.llm.withhold import CREDENTIALS_REFUSED
from bot.loopback import serve
from bot.model_proxy import CST_HEADER
from bot.proxy_config import UpstreamConfig
from bot.scripted_model import SCRIPTED_PROVIDER, ScriptedModel
from bot.scripted_refusals import Canned, invalid_api_key, masked_key, openai_error
from engine.lifecycle import Kill
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import model_receipts
from tests.integration.agent.test_proxy import chat, http, token

__all__ = ["http"]  # the fixture shared with test_proxy

KEY = "sk-Zq7XmLp9RtV4nZc8WfYh3JkDs6GaE1uTo5iNr0qPeUyB"  # ours, as the proxy presents it
SHOWN = 4  # no run of the key's first or last characters this long may show anywhere
PARTS = [KEY, KEY[:SHOWN], KEY[-SHOWN:]]


def shown(text: str | bytes) -> list[str]:
    """The parts of our key in ``text``: must be none."""
    value = text.decode(errors="replace") if isinstance(text, bytes) else text
    return [part for part in PARTS if part in value]


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedModel]:
    """An OpenAI-like upstream that wants another key than ours, over HTTP."""
    model = ScriptedModel(api_key="sk-the-key-the-upstream-wants-instead-of-ours")
    site = await serve(model.app())
    model.url = site.url + "/v1"  # type: ignore[attr-defined]
    yield model
    await site.close()


async def approved_env(
    make_env: MakeEnv, upstream: ScriptedModel, caplog: pytest.LogCaptureFixture, **options: Any
) -> AgentEnv:
    """Every logger at DEBUG; the proxy presents our key to ``upstream``; the job approved."""
    caplog.set_level(logging.DEBUG)
    url = upstream.url  # type: ignore[attr-defined]
    env = await make_env(
        proxy={"upstream": UpstreamConfig(SCRIPTED_PROVIDER, url, api_key=KEY)}, **options
    )
    await approve(env)
    return env


async def call(
    http: aiohttp.ClientSession, env: AgentEnv, body: Mapping[str, Any]
) -> tuple[int, bytes]:
    headers = {CST_HEADER: await token(env)}
    async with http.post(env.proxy_url + "/chat/completions", json=body, headers=headers) as r:
        return r.status, await r.read()


async def nothing_of_the_key_anywhere(env: AgentEnv, caplog: pytest.LogCaptureFixture) -> None:
    """Not in the chain (receipts and every other event), the kept bodies, the chat or the
    log (every logger, at DEBUG)."""
    await env.settle()
    chain = [json.dumps(record.envelope) for record in await env.store.chain("job-a1")]
    assert [shown(envelope) for envelope in chain if shown(envelope)] == []
    for kept in await env.store.exchanges("job-a1"):
        assert shown(kept.request_body + kept.response_body) == []
    assert shown(repr(env.chat.events)) == []
    assert shown(caplog.text) == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_the_upstreams_401_quoting_our_key_reaches_the_agent_without_it(
    make_env: MakeEnv,
    upstream: ScriptedModel,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    env = await approved_env(make_env, upstream, caplog, agent=False)
    status, body = await call(http, env, chat(stream=stream))
    assert upstream.received[-1].authorization == f"Bearer {KEY}"  # it got our key ...
    assert shown(invalid_api_key(KEY).body) == PARTS[1:]  # ... and quotes its ends, so:
    assert status == 401
    assert shown(body) == []
    error = json.loads(body)["error"]
    assert error == {
        "message": CREDENTIALS_REFUSED,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    (receipt,) = await model_receipts(env, "job-a1")  # its hash is of the bytes kept
    assert receipt["metadata"]["upstream_status"] == 401
    assert receipt["metadata"]["key_withheld"] is True
    assert "refused a call of job-a1 (401; its message withheld)" in caplog.text
    await nothing_of_the_key_anywhere(env, caplog)


@pytest.mark.parametrize(
    "answer",
    [
        openai_error(500, f"upstream failed with key {KEY}", "server_error"),
        openai_error(403, f"Key {masked_key(KEY)} may not use this model", "permission_error"),
        openai_error(429, f"Rate limit for key ...{KEY[-6:]}", "requests", "rate_limit_exceeded"),
        Canned(502, f"<h1>Bad gateway</h1><p>{KEY[:10]}...</p>".encode(), "text/html"),
    ],
    ids=["500-whole-key", "403-masked-key", "429-key-end", "502-page-key-start"],
)
async def test_any_error_answer_loses_our_key_and_its_ends_but_keeps_its_status(
    make_env: MakeEnv,
    upstream: ScriptedModel,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    answer: Canned,
) -> None:
    env = await approved_env(make_env, upstream, caplog, agent=False)
    upstream.canned.append(answer)
    status, body = await call(http, env, chat())
    assert status == answer.status
    assert shown(body) == []
    if answer.content_type == "text/html":
        assert body == b"<h1>Bad gateway</h1><p>**********...</p>"
    elif answer.status == 403:
        assert json.loads(body)["error"]["message"] == CREDENTIALS_REFUSED
    else:  # the upstream's words stay, the key's characters are masked
        message = json.loads(body)["error"]["message"]
        assert message.split(" ")[:2] == json.loads(answer.body)["error"]["message"].split(" ")[:2]
        assert "*" * SHOWN in message
    (receipt,) = await model_receipts(env, "job-a1")
    assert (receipt["metadata"]["upstream_status"], receipt["metadata"]["key_withheld"]) == (
        answer.status,
        True,
    )
    await nothing_of_the_key_anywhere(env, caplog)


async def test_the_agent_refused_by_the_upstream_learns_nothing_of_the_key(
    make_env: MakeEnv, upstream: ScriptedModel, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole job: the agent's call is refused upstream, the agent stops (it logs the
    answer's status and code), the job is killed and rolled back; nothing shows the key."""
    env = await approved_env(make_env, upstream, caplog)
    await env.settle()
    assert "the proxy answered 401 invalid_api_key" in caplog.text  # the agent's own log
    assert (await env.service.command("job-a1", Kill(env.service.actor("console:dave")))).ok
    await env.settle()
    assert (await env.service.load("job-a1")).resolved
    assert len(upstream.received) == 1
    await nothing_of_the_key_anywhere(env, caplog)
