"""Links in Slack (issues 17 and 18): the audit summary links the readable report when the
service has a public URL; an approver's click on a plan that needs step-up is answered with a
link button to that approver's sign-in, ephemeral (only they see it), changing nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from adapters.entra_signin import CALLBACK_PATH, StepUpFlow
from adapters.entra_signin.jobs import StepUpJobs
from adapters.entra_signin.routes import add_callback_route
from bot.job_commands import ServiceJobs
from bot.stepup import simulated_config
from cards.slack import LINK_ACTION
from engine.access import access_from_config
from engine.job import DENIED, PENDING
from tests.integration.graph.support import BOB as BOB_OID
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import click, dm_of, request_job, thread
from tests.integration.slack.support import BOB, INCIDENT

PUBLIC = "https://breakglass.example"


def link_buttons(message: Any) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
        if "url" in element
    ]


@pytest.mark.parametrize("public_url", [PUBLIC, None])
async def test_the_audit_summary_links_the_report_only_with_a_public_url(
    env: Env, public_url: str | None
) -> None:
    env.slack.chat.public_url = public_url
    job = await request_job(env)
    await click(env, BOB, f"D{BOB}", dm_of(env, BOB), "deny")
    assert (await env.service.load(job.job_id)).state == DENIED
    (summary,) = [m for m in thread(env) if "audit summary" in str(m.get("text"))]
    buttons = link_buttons(summary)
    if public_url is None:
        assert buttons == []
    else:
        (button,) = buttons
        assert button["url"] == f"{PUBLIC}/v1/reports/{job.job_id}"
        assert button["action_id"] == LINK_ACTION


async def test_a_step_up_click_answers_with_a_private_sign_in_button(env: Env) -> None:
    async with step_up(env):
        job = await request_job(env)
        before = await env.store.chain(job.job_id)
        posted_before = len(env.fake.posts())
        await click(env, BOB, f"D{BOB}", dm_of(env, BOB), "approve")

    (answer,) = [c.params for c in env.fake.of("chat.postEphemeral") if c.params["user"] == BOB]
    (button,) = link_buttons(answer)
    assert button["url"].startswith(env.sim.base_url)  # the tenant's sign-in, for BOB alone
    assert "Sign in" in button["text"]["text"]
    assert answer["channel"] == f"D{BOB}"
    # Nobody else saw it: no shared post carries the URL, and the job did not move.
    assert len(env.fake.posts()) == posted_before
    assert all(button["url"] not in json.dumps(m) for m in env.fake.messages.values())
    after = await env.service.load(job.job_id)
    assert (after.state, after.plan.approvers()) == (PENDING, [])
    assert await env.store.chain(job.job_id) == before

    # Slack still sends a click for a link button: it is acknowledged and does nothing.
    calls = len(env.fake.calls)
    message = answer | {"ts": "1.0"}
    response = await env.sender.click(BOB, INCIDENT, message, LINK_ACTION)
    assert response.status == 200
    await env.settle()
    assert len(env.fake.calls) == calls


@asynccontextmanager
async def step_up(env: Env) -> AsyncIterator[StepUpFlow]:
    """Step-up required for the role template; the callback on its own loopback listener;
    BOB is the simulated tenant's Bob (so he can sign in there) and an approver."""
    access = access_from_config(
        {"entra-role": {"roles": ["*"], "principals": ["*"], "step_up": "required"}},
        {"authentication_context": "c1", "max_age_seconds": 300},
    )
    rules = env.service.rules
    env.service.rules = replace(rules, access=access, approvers=rules.approvers | {BOB_OID})
    inbound = env.slack.inbound
    mapping = dict(inbound.directory.by_chat_identity) | {f"slack:{BOB}": [BOB_OID]}
    inbound.directory = replace(inbound.directory, by_chat_identity=mapping)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    redirect = f"http://{host}:{port}{CALLBACK_PATH}"
    env.sim.register_redirect_uri(redirect)
    async with aiohttp.ClientSession() as session:
        config = simulated_config(env.sim, redirect)
        flow = StepUpFlow(config, ServiceJobs(env.service), session, env.clock.now)
        inbound.jobs = StepUpJobs(inbound.jobs, flow)
        app = web.Application()
        add_callback_route(app, flow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, listener).start()
        try:
            yield flow
        finally:
            await runner.cleanup()


async def sign_in(url: str, oid: str) -> int:
    """The approver's browser: sign in with MFA at the tenant, follow it to the callback."""
    async with aiohttp.ClientSession() as browser:
        form = {**URL(url).query, "user": oid, "mfa": "1"}
        async with browser.post(url, data=form, allow_redirects=False) as signed:
            assert signed.status == 302, await signed.text()
            callback = signed.headers["Location"]
        async with browser.get(callback, allow_redirects=False) as answer:
            return answer.status


async def test_after_the_sign_in_the_approval_counts_and_the_cards_update(env: Env) -> None:
    async with step_up(env):
        job = await request_job(env)
        await click(env, BOB, f"D{BOB}", dm_of(env, BOB), "approve")
        (answer,) = [c.params for c in env.fake.of("chat.postEphemeral")]
        (button,) = link_buttons(answer)
        updates = len(env.fake.of("chat.update"))
        assert await sign_in(button["url"], BOB_OID) == 200
        await env.settle()
    after = await env.service.load(job.job_id)
    assert after.plan.approvers() == [BOB_OID]
    assert [d.step_up is not None for d in after.plan.decisions] == [True]
    assert len(env.fake.of("chat.update")) > updates  # the cards show the approval
    assert f"1 of 2: {BOB_OID}" in json.dumps(dm_of(env, BOB))  # BOB's prompt shows it
