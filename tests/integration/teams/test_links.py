"""Links in Teams (issues 17 and 18): the audit summary has an ``Action.OpenUrl`` to the
readable report when the service has a public URL; an approver's Approve on a plan that needs
step-up is answered, in the invoke response only that approver sees, with an
``Action.OpenUrl`` to their sign-in, and nothing is posted or changed."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from adapters.entra_signin import StepUpFlow
from adapters.entra_signin.jobs import StepUpJobs
from bot.job_commands import ServiceJobs
from bot.stepup import simulated_config
from engine.access import access_from_config
from engine.job import DENIED, PENDING
from tests.integration.teams.conftest import BOB, TeamsEnv
from tests.integration.teams.flow import approval_message, invoke_card, press, requested

PUBLIC = "https://breakglass.example"


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
    links = open_urls(summary)
    if public_url is None:
        assert links == []
    else:
        (link,) = links
        assert link["url"] == f"{PUBLIC}/v1/reports/{job.job_id}"


async def test_a_step_up_approve_answers_with_a_private_sign_in_button(teams: TeamsEnv) -> None:
    access = access_from_config(
        {"entra-role": {"roles": ["*"], "principals": ["*"], "step_up": "required"}},
        {"authentication_context": "c1", "max_age_seconds": 300},
    )
    teams.service.rules = replace(teams.service.rules, access=access)
    redirect = "http://127.0.0.1:9/v1/stepup/callback"
    teams.sim.register_redirect_uri(redirect)
    async with aiohttp.ClientSession() as session:
        flow = StepUpFlow(
            simulated_config(teams.sim, redirect),
            ServiceJobs(teams.service),
            session,
            teams.clock.now,
        )
        ports = teams.bot.actions.ports
        teams.bot.actions.ports = replace(ports, jobs=StepUpJobs(ports.jobs, flow))
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
