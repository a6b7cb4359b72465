"""An Approve click from any chat platform (the shared ``chat_actions.act`` path) on a plan
that needs step-up yields the approver's own sign-in link; the approval counts only when
that sign-in completes. Clicks on plans without step-up, and other verbs, pass through."""

from __future__ import annotations

from dataclasses import replace

from adapters import chat_actions
from adapters.entra_signin.jobs import SIGN_IN_LINK, SIGN_IN_URL, StepUpJobs
from bot.job_commands import chat_ports
from cards.actions import CardAction, Verb
from engine import job as states
from engine.stepup import STEP_UP_REQUIRED
from tests.integration.stepup.conftest import BOB, CAROL, StepUpEnv


def jobs_for(env: StepUpEnv) -> StepUpJobs:
    return StepUpJobs(chat_ports(env.service).jobs, env.flow)


async def click(env: StepUpEnv, job_id: str, plan_hash: str, who: str) -> str:
    action = CardAction(Verb.APPROVE, job_id, plan_hash)
    outcome = await chat_actions.act(jobs_for(env), action, env.actor(who))
    assert not outcome.ok
    assert outcome.reason == STEP_UP_REQUIRED
    url, link = str(outcome.result[SIGN_IN_URL]), str(outcome.result[SIGN_IN_LINK])
    assert link in outcome.detail  # text-only adapters show the short link
    assert len(link) < 120  # chat platforms cut long lines; Entra's URL is long
    async with env.browser.get(link, allow_redirects=False) as hop:
        assert (hop.status, hop.headers["Location"]) == (302, url)
    return url


async def test_two_clicks_and_two_sign_ins_open_the_job(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    for who, oid in (("bob", BOB), ("carol", CAROL)):
        url = await click(stepup, job.job_id, job.plan.plan_hash, who)
        status, _ = await stepup.callback(await stepup.sign_in(url, oid))
        assert status == 200
    after = await stepup.service.load(job.job_id)
    assert after.state == states.ACTIVE
    assert after.refusals == ()  # a click that starts a sign-in is not a refusal


async def test_a_click_alone_changes_nothing(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    await click(stepup, job.job_id, job.plan.plan_hash, "bob")
    after = await stepup.service.load(job.job_id)
    assert after.plan.approvers() == []
    assert after.state == states.PENDING


async def test_a_click_on_a_plan_the_job_never_had_reaches_the_engine(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    action = CardAction(Verb.APPROVE, job.job_id, "A" * 43)
    outcome = await chat_actions.act(jobs_for(stepup), action, stepup.actor("bob"))
    assert outcome.reason == "PLAN_UNKNOWN"


async def test_plans_without_step_up_approve_at_once(stepup: StepUpEnv) -> None:
    access = stepup.service.rules.access
    assert access is not None
    relaxed = {"entra-role": replace(access.templates["entra-role"], step_up="off")}
    stepup.service.rules = replace(stepup.service.rules, access=replace(access, templates=relaxed))
    job = await stepup.request()
    action = CardAction(Verb.APPROVE, job.job_id, job.plan.plan_hash)
    outcome = await chat_actions.act(jobs_for(stepup), action, stepup.actor("bob"))
    assert outcome.ok


async def test_a_used_or_unknown_short_link_leads_nowhere(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    url = await click(stepup, job.job_id, job.plan.plan_hash, "bob")
    link = stepup.flow.short_link(url)
    assert (await stepup.callback(await stepup.sign_in(url, BOB)))[0] == 200
    async with stepup.browser.get(link, allow_redirects=False) as used:
        assert used.status == 404
    async with stepup.browser.get(link[:-4] + "AAAA", allow_redirects=False) as unknown:
        assert unknown.status == 404


async def test_the_requester_is_refused_at_once_not_sent_to_sign_in(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    action = CardAction(Verb.APPROVE, job.job_id, job.plan.plan_hash)
    outcome = await chat_actions.act(jobs_for(stepup), action, stepup.actor("alice"))
    assert (outcome.ok, outcome.reason) == (False, "SELF_APPROVAL")
    assert SIGN_IN_URL not in outcome.result  # no sign-in link for a click that cannot count
    after = await stepup.service.load(job.job_id)
    assert after.plan.approvers() == []
    assert after.state == states.PENDING
    assert [r["reason"] for r in after.refusals] == ["SELF_APPROVAL"]  # recorded
