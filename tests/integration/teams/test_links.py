"""Links in Teams (issues 17 and 18): the audit summary has an ``Action.OpenUrl`` to the
readable report when the service has a public URL; an approver's Approve on a plan that needs
step-up is answered, in the invoke response only that approver sees, with an
``Action.OpenUrl`` to their sign-in, and nothing is posted or changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from adapters.entra_signin import StepUpFlow
from adapters.entra_signin.jobs import StepUpJobs
from engine.job import DENIED, PENDING
from tests.integration.graph.support import BOB as BOB_OID
from tests.integration.stepup.chat import chat_step_up, sign_in
from tests.integration.teams.conftest import BOB, TeamsEnv
from tests.integration.teams.flow import approval_message, invoke_card, press, requested
from tests.support.links import PUBLIC, the_report_link


def open_urls(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in card.get("actions", []) if a.get("type") == "Action.OpenUrl"]


async def my_card(env: TeamsEnv) -> tuple[str, dict[str, Any]]:
    """BOB's own variant of the approval card (what his client fetches by refresh)."""
    message_id, shared = approval_message(env)
    status, body = await press(env, BOB, shared, "refresh", message_id, trigger="automatic")
    assert status == 200, body
    return message_id, invoke_card(body)


@pytest.mark.parametrize("public_url", [PUBLIC, None])
async def test_the_audit_summary_links_the_report_only_with_a_public_url(
    teams: TeamsEnv, public_url: str | None
) -> None:
    teams.bot.chat.public_url = public_url
    job, _ = await requested(teams)
    message_id, mine = await my_card(teams)
    assert (await press(teams, BOB, mine, "deny", message_id))[0] == 200
    await teams.settle()
    assert (await teams.service.load(job.job_id)).state == DENIED
    (summary,) = [c.card for c in teams.connector.titled("audit summary") if c.card]
    the_report_link(open_urls(summary), public_url, job.job_id)


@asynccontextmanager
async def step_up(env: TeamsEnv) -> AsyncIterator[StepUpFlow]:
    """Step-up on Teams; BOB is the simulated tenant's Bob (so he can sign in there)."""
    service = env.service
    mapping = dict(service.directory.by_chat_identity) | {f"teams:{BOB.user_id}": [BOB_OID]}
    service.directory = replace(service.directory, by_chat_identity=mapping)
    async with chat_step_up(service, env.sim, env.clock.now) as flow:
        ports = env.bot.actions.ports
        env.bot.actions.ports = replace(ports, jobs=StepUpJobs(ports.jobs, flow))
        yield flow


async def test_a_step_up_approve_answers_with_a_private_sign_in_button(teams: TeamsEnv) -> None:
    async with step_up(teams):
        job, _ = await requested(teams)
        before = await teams.store.chain(job.job_id)
        message_id, mine = await my_card(teams)
        calls = len(teams.connector.calls)
        status, body = await press(teams, BOB, mine, "approve", message_id)
        await teams.settle()

        assert status == 200
        answer = invoke_card(body)  # the invoke response: shown to BOB only
        (link,) = open_urls(answer)
        assert link["url"].startswith(teams.sim.base_url)
        assert "Sign in" in link["title"]
        # Nothing was posted or updated for anyone else, and the job did not move.
        assert len(teams.connector.calls) == calls
        assert all(link["url"] not in json.dumps(c.card) for c in teams.connector.calls)
        after = await teams.service.load(job.job_id)
        assert (after.state, after.plan.approvers()) == (PENDING, [])
        assert await teams.store.chain(job.job_id) == before

        # BOB signs in: the approval counts, with step-up, and the shared card shows it.
        assert "1 of 2" not in json.dumps(approval_message(teams)[1])
        updates = len(teams.connector.updates(message_id))
        assert await sign_in(link["url"], BOB_OID) == 200
        await teams.settle()
    after = await teams.service.load(job.job_id)
    assert after.plan.approvers() == [BOB_OID]
    assert [d.step_up is not None for d in after.plan.decisions] == [True]
    assert len(teams.connector.updates(message_id)) > updates
    assert "1 of 2" in json.dumps(approval_message(teams)[1])


async def test_an_old_client_submit_never_posts_the_sign_in_link(teams: TeamsEnv) -> None:
    """Action.Submit answers land in the channel: the sign-in link must not be among them."""
    async with step_up(teams):
        job, _ = await requested(teams)
        message_id, _ = approval_message(teams)
        calls = len(teams.connector.calls)
        data = {"verb": "approve", "job_id": job.job_id, "plan_hash": job.plan.plan_hash}
        submit = teams.activity("message", BOB, value=data, replyToId=message_id)
        assert (await teams.post(submit))[0] == 202
        await teams.settle()
    (said,) = [json.dumps(c.body) for c in teams.connector.calls[calls:]]
    assert "fresh sign-in" in said
    assert teams.sim.base_url not in said
    assert (await teams.service.load(job.job_id)).plan.approvers() == []
