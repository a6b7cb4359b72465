"""The model proxy's bounds on calls in flight: per job and through the whole proxy. The
scripted model holds every call at a gate the test opens (no timing involved); a call over
a bound is refused at once with 429, logged as a refusal, receipted nowhere and never sent
upstream, and a slot comes back when a call ends, also when its client hung up."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
import pytest

from bot.model_proxy import CST_HEADER, RECEIPT_HEADER
from bot.proxy_config import ProxyConfig
from bot.scripted_controls import Gate
from engine.cst import TokenKind
from engine.errors import ConfigError
from tests.integration.agent.conftest import AgentEnv, MakeEnv, approve
from tests.integration.agent.receipts import model_receipts
from tests.integration.agent.test_proxy import chat, http
from tests.support.engine_sim import ROLE_TARGETS
from tests.support.waiting import eventually

__all__ = ["http"]  # the fixture shared with test_proxy

Answer = tuple[int, Mapping[str, str], Any]
NEVER = 30.0


async def cst(env: AgentEnv, job_id: str = "job-a1") -> str:
    return env.service.token_for(await env.service.load(job_id), TokenKind.AGENT)


async def post(
    http: aiohttp.ClientSession, env: AgentEnv, content: str, job_id: str = "job-a1"
) -> Answer:
    headers = {CST_HEADER: await cst(env, job_id)}
    url = env.proxy_url + "/chat/completions"
    async with http.post(url, json=chat(content), headers=headers) as r:
        return r.status, r.headers, json.loads(await r.read())


async def refused_as_busy(call: Awaitable[Answer], where: str, limit: int) -> None:
    """``call`` is answered 429 at once. (The wait is bounded only so that a proxy without
    the bound, whose call waits at the gate, fails the test instead of hanging it.)"""
    status, headers, body = await asyncio.wait_for(call, NEVER)
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert RECEIPT_HEADER not in headers  # nothing was exchanged, so nothing receipted
    error = body["error"]
    assert set(error) == {"message", "type", "code"}
    assert (error["type"], error["code"]) == ("breakglass_refusal", "TOO_MANY_CALLS")
    assert f"in flight {where} (at most {limit})" in error["message"]


def upstream_saw(env: AgentEnv) -> list[str]:
    """The contents of the calls the scripted model answered, in order."""
    return [json.loads(r.body)["messages"][0]["content"] for r in env.scripted.received]


class Calls:
    """Calls the test keeps in flight: each waits at the scripted model's gate until the
    test lets it go; ``end`` lets every one go and waits for all of them."""

    def __init__(self, http: aiohttp.ClientSession, env: AgentEnv) -> None:
        self.http, self.env = http, env
        self.gate = env.scripted.gate = Gate()
        self.started: list[asyncio.Task[Answer]] = []

    def start(self, content: str, job_id: str = "job-a1") -> asyncio.Task[Answer]:
        task = asyncio.create_task(post(self.http, self.env, content, job_id))
        self.started.append(task)
        return task

    async def end(self) -> None:
        self.gate.open()
        await asyncio.gather(*self.started, return_exceptions=True)

    def statuses(self) -> list[int]:
        return [task.result()[0] for task in self.started]


async def test_a_call_over_the_jobs_bound_is_refused_at_once_and_never_forwarded(
    make_env: MakeEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    env = await make_env(agent=False, proxy={"max_calls_per_job": 2})
    await approve(env)
    calls = Calls(http, env)
    try:
        first = [calls.start("held 0"), calls.start("held 1")]
        await calls.gate.holding(2)  # both are at the upstream, waiting for the test
        await refused_as_busy(post(http, env, "one too many"), "for this job", 2)
        assert "model call refused: TOO_MANY_CALLS (job-a1: 2 in flight for the job)" in (
            caplog.text
        )
        calls.gate.release(1)  # one call ends ...
        done, _ = await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        assert [task.result()[0] for task in done] == [200]
        calls.start("after one ended")  # ... and one more may start:
        await calls.gate.holding(2)  # it reached the upstream (the other held call is there)
        await refused_as_busy(post(http, env, "again too many"), "for this job", 2)
    finally:
        await calls.end()
    assert calls.statuses() == [200] * 3
    await env.settle()
    assert sorted(upstream_saw(env)) == ["after one ended", "held 0", "held 1"]
    assert len(await model_receipts(env, "job-a1")) == 3  # one per call forwarded, no more
    kept = [exchange.request_body for exchange in await env.store.exchanges("job-a1")]
    assert [body for body in kept if b"too many" in body] == []


async def test_the_proxys_bound_holds_across_jobs_and_a_busy_job_leaves_others_their_calls(
    make_env: MakeEnv, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "breakglass.model_proxy")
    env = await make_env(agent=False, proxy={"max_calls_per_job": 2, "max_calls": 3})
    await approve(env)
    await approve(env, "job-b1", targets=ROLE_TARGETS | {"principal_id": "u-eve"})
    calls = Calls(http, env)
    try:
        calls.start("a0")
        calls.start("a1")
        await calls.gate.holding(2)
        await refused_as_busy(post(http, env, "a-over"), "for this job", 2)
        calls.start("b0", "job-b1")  # job a at its bound leaves job b its own calls
        await calls.gate.holding(3)
        await refused_as_busy(post(http, env, "b-over", "job-b1"), "through this proxy", 3)
        assert "TOO_MANY_CALLS (job-b1: 3 in flight for the proxy)" in caplog.text
    finally:
        await calls.end()
    assert calls.statuses() == [200] * 3
    await env.settle()
    assert sorted(upstream_saw(env)) == ["a0", "a1", "b0"]


async def test_a_client_that_hung_up_gives_its_slot_back(
    make_env: MakeEnv, http: aiohttp.ClientSession
) -> None:
    env = await make_env(agent=False, proxy={"max_calls_per_job": 1})
    await approve(env)
    calls = Calls(http, env)
    try:
        hung = asyncio.create_task(post(http, env, "hung up"))
        await calls.gate.holding(1)
        await refused_as_busy(post(http, env, "over"), "for this job", 1)
        hung.cancel()  # the client goes away; the proxy's handler is cancelled, the upstream cut
        await asyncio.gather(hung, return_exceptions=True)
        # Until the proxy's handler has ended (its slot back) and the upstream's too.
        await eventually(lambda: env.proxy.slots.in_flight("job-a1") == 0 and not calls.gate.held)
        calls.start("after the hang-up")
        await calls.gate.holding(1)  # it went through to the upstream
    finally:
        await calls.end()
    assert calls.statuses() == [200]


def test_the_bounds_are_at_least_one() -> None:
    assert (ProxyConfig().max_calls_per_job, ProxyConfig().max_calls) == (4, 16)
    with pytest.raises(ConfigError):
        ProxyConfig(max_calls_per_job=0)
    with pytest.raises(ConfigError):
        ProxyConfig(max_calls=0)
