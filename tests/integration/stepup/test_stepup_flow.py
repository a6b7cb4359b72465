"""Step-up at approval through the real OIDC flow against the simulated tenant: both
approvers sign in with MFA and the job opens; every attack is refused, changes nothing
and is recorded on the job."""

from __future__ import annotations

import json

import pytest
from yarl import URL

from engine import job as states
from engine.errors import CommandRefused
from engine.lifecycle import Approve
from engine.stepup import (
    STEP_UP_CONTEXT_MISSING,
    STEP_UP_FAILED,
    STEP_UP_REPLAYED,
    STEP_UP_REQUIRED,
    STEP_UP_STALE,
    STEP_UP_WRONG_USER,
)
from tests.integration.stepup.conftest import BOB, CAROL, StepUpEnv


async def assert_refused_and_recorded(
    env: StepUpEnv, job_id: str, before_approvers: list[str], reason: str
) -> None:
    job = await env.service.load(job_id)
    assert job.state == states.PENDING
    assert job.plan.approvers() == before_approvers  # nothing changed
    assert job.refusals[-1]["reason"] == reason  # and the refusal is on the job


async def test_both_approvers_step_up_and_the_job_opens(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    status, page = await stepup.approve_with_step_up(job, "bob", BOB)
    assert (status, "Approval recorded" in page) == (200, True)
    status, _ = await stepup.approve_with_step_up(job, "carol", CAROL)
    assert status == 200
    job = await stepup.service.load(job.job_id)
    assert job.state == states.ACTIVE
    evidence = [d.step_up for d in job.plan.decisions]
    assert [e["subject"] for e in evidence if e] == [BOB, CAROL]
    assert all(e and e["acrs"] == ["c1"] and "mfa" in e["amr"] for e in evidence)
    chain = await stepup.service.store.chain(job.job_id)
    receipts = [
        r.envelope["payload"]
        for r in chain
        if r.envelope and r.envelope.get("envelope_type") == "human_approval_receipt"
    ]
    in_receipts = [json.loads(p["binding"]["step_up"]) for p in receipts]
    assert [e["subject"] for e in in_receipts] == [BOB, CAROL]
    assert all(len(e["token_hash_b64u"]) == 43 for e in in_receipts)
    assert "eyJ" not in json.dumps(receipts)  # no JWT anywhere in the receipts
    # Each step-up sign-in is in the tenant's sign-in log, as Entra's would be (issue 17 §5).
    assert [e["userId"] for e in stepup.tenant.sign_in_log] == [BOB, CAROL]


async def test_a_click_without_step_up_is_refused(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    outcome = await stepup.service.command(
        job.job_id, Approve(stepup.actor("bob"), job.plan.plan_hash)
    )
    assert outcome.reason == STEP_UP_REQUIRED
    await assert_refused_and_recorded(stepup, job.job_id, [], STEP_UP_REQUIRED)


async def test_another_persons_id_token_is_refused(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    url = await stepup.sign_in_url(job, "bob")
    status, page = await stepup.callback(await stepup.sign_in(url, CAROL))  # carol signs in
    assert status == 403
    assert STEP_UP_WRONG_USER in page
    await assert_refused_and_recorded(stepup, job.job_id, [], STEP_UP_WRONG_USER)


async def test_a_sign_in_without_mfa_lacks_the_context(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    url = await stepup.sign_in_url(job, "bob")
    status, _ = await stepup.callback(await stepup.sign_in(url, BOB, mfa=False))
    assert status == 403
    await assert_refused_and_recorded(stepup, job.job_id, [], STEP_UP_CONTEXT_MISSING)


async def test_a_stale_sign_in_is_refused(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    location = await stepup.sign_in(await stepup.sign_in_url(job, "bob"), BOB)
    stepup.clock.advance(minutes=7)  # the tab sat open: the code is still valid (10 min)
    status, _ = await stepup.callback(location)
    assert status == 403
    await assert_refused_and_recorded(stepup, job.job_id, [], STEP_UP_STALE)


async def test_a_tampered_nonce_is_refused(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    url = URL(await stepup.sign_in_url(job, "bob"))
    tampered = str(url.update_query(nonce="attacker-chosen-nonce"))
    status, page = await stepup.callback(await stepup.sign_in(tampered, BOB))
    assert status == 403
    assert "nonce" in page
    await assert_refused_and_recorded(stepup, job.job_id, [], STEP_UP_FAILED)


async def test_a_replayed_callback_is_refused(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    location = await stepup.sign_in(await stepup.sign_in_url(job, "bob"), BOB)
    assert (await stepup.callback(location))[0] == 200
    status, page = await stepup.callback(location)
    assert status == 403
    assert STEP_UP_REPLAYED in page
    await assert_refused_and_recorded(stepup, job.job_id, [BOB], STEP_UP_REPLAYED)


async def test_an_unknown_state_changes_nothing(stepup: StepUpEnv) -> None:
    job = await stepup.request()
    location = await stepup.sign_in(await stepup.sign_in_url(job, "bob"), BOB)
    forged = str(URL(location).update_query(state="forged-state"))
    status, _ = await stepup.callback(forged)
    assert status == 403
    after = await stepup.service.load(job.job_id)
    assert after.plan.approvers() == []
    assert after.refusals == ()  # no job could be named: nothing to record it on


async def test_a_code_for_another_sign_in_is_refused(stepup: StepUpEnv) -> None:
    """Bob's code delivered with Carol's state: the PKCE verifier does not match."""
    job = await stepup.request()
    bob_location = await stepup.sign_in(await stepup.sign_in_url(job, "bob"), BOB)
    carol_url = await stepup.sign_in_url(job, "carol")
    carol_state = URL(carol_url).query["state"]
    swapped = str(URL(bob_location).update_query(state=carol_state))
    status, page = await stepup.callback(swapped)
    assert status == 403
    assert "code exchange" in page
    await assert_refused_and_recorded(stepup, job.job_id, [], STEP_UP_FAILED)


async def test_a_sign_in_for_a_plan_the_job_never_had_is_not_begun(stepup: StepUpEnv) -> None:
    # "No longer current" would send the approver looking for a newer card that is not there.
    job = await stepup.request()
    with pytest.raises(CommandRefused) as err:
        await stepup.flow.begin(job.job_id, "A" * 43, stepup.actor("bob"))
    assert (err.value.reason, err.value.detail) == (
        "PLAN_UNKNOWN",
        "the sign-in is for a plan this job never had",
    )
    assert await stepup.service.load(job.job_id) == job  # nothing changed
    assert stepup.tenant.sign_in_log == []  # and nobody was sent to sign in
