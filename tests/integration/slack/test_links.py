"""Links in Slack (issues 17 and 18): the audit summary links the readable report when the
service has a public URL; an approver's click on a plan that needs step-up is answered with a
link button to that approver's sign-in, ephemeral (only they see it), changing nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from adapters.entra_signin import StepUpFlow
from adapters.entra_signin.jobs import StepUpJobs
from cards.slack import LINK_ACTION
from engine.job import DENIED, PENDING
from tests.integration.graph.support import BOB as BOB_OID
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import click, dm_of, request_job, thread
from tests.integration.slack.support import BOB, INCIDENT
from tests.integration.stepup.chat import chat_step_up, sign_in
from tests.support.links import PUBLIC, the_report_link


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
    button = the_report_link(link_buttons(summary), public_url, job.job_id)
    assert button is None or button["action_id"] == LINK_ACTION


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
    """Step-up on Slack; BOB is the simulated tenant's Bob (so he can sign in there)."""
    inbound = env.slack.inbound
    mapping = dict(inbound.directory.by_chat_identity) | {f"slack:{BOB}": [BOB_OID]}
    inbound.directory = replace(inbound.directory, by_chat_identity=mapping)
    async with chat_step_up(env.service, env.sim, env.clock.now) as flow:
        inbound.jobs = StepUpJobs(inbound.jobs, flow)
        yield flow


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
