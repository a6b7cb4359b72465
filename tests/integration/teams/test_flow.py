"""A whole break-glass job from a Teams incident channel, end to end on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from adapters.graph.simulated import Fault
from engine.job import ACTIVE, KILLED, PENDING
from engine.verify import verify_bundle
from tests.integration.teams.conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DAVE_P,
    MALLORY,
    THREAD,
    USER_ADMIN,
    TeamsEnv,
)
from tests.integration.teams.fakes import OUTBOUND_TOKEN, heading
from tests.integration.teams.flow import (
    actions,
    active,
    approval_message,
    approve,
    bundle_from,
    form_data,
    invoke_card,
    open_form,
    press,
    requested,
)
from tests.support.engine_sim import trust_for
from tests.support.receipts import shown_seqs
from tests.support.shared import shared_dir

REPO = Path(__file__).resolve().parents[3]


def holders(env: TeamsEnv) -> set[str]:
    return {a.principal_id for a in env.sim.active_grants() if a.role_id == USER_ADMIN}


async def test_request_command_answers_with_the_form_in_the_thread(teams: TeamsEnv) -> None:
    form = await open_form(teams)
    assert form.method == "POST"
    assert form.path.startswith(f"/v3/conversations/{THREAD}/activities/")
    assert form.card is not None
    assert actions(form.card)["request"]["data"]["form"] == "request"
    assert form.authorization == f"Bearer {OUTBOUND_TOKEN}"


async def test_submitting_the_form_makes_a_pending_job_and_asks_the_approvers(
    teams: TeamsEnv,
) -> None:
    job, status_id = await requested(teams)
    assert job.state == PENDING
    assert job.requester.principal == "u-alice"
    assert teams.connector.updates(status_id), "the form did not become the status card"
    _, shared = approval_message(teams)
    assert shared["refresh"]["userIds"] == ["29:bob", "29:dave"]  # carol is known by aad only
    assert "actions" in shared
    assert set(actions(shared)) == {"refresh"}  # read-only: only "Show my options"


async def test_whole_job_request_approve_grant_countdown_kill_rollback_bundle(
    teams: TeamsEnv,
) -> None:
    job, status_id = await requested(teams)
    bob_card = await approve(teams, BOB)
    assert set(actions(bob_card)) == {"withdraw"}
    await approve(teams, CAROL)
    job = await teams.service.load(job.job_id)
    assert job.state == ACTIVE
    assert holders(teams) == {DAVE}
    assert job.verified_after_write is True

    updates_before = len(teams.connector.updates(status_id))
    teams.advance(minutes=5)
    await teams.service.tick()
    await teams.settle()
    assert len(teams.connector.updates(status_id)) > updates_before

    status_card = teams.connector.updates(status_id)[-1].card
    assert status_card is not None
    status, body = await press(teams, MALLORY, status_card, "kill", status_id)
    assert status == 200, body
    invoke_card(body)
    await teams.settle()
    job = await teams.service.load(job.job_id)
    assert job.state == KILLED, job.state
    assert job.rollback_verified is True
    assert holders(teams) == set()
    assert teams.connector.titled("Break-glass ended")
    assert teams.connector.titled("audit summary")
    report = verify_bundle(bundle_from(teams), trust_for(teams.service.keys))
    assert report.valid, report.reasons
    assert all(c.authorization == f"Bearer {OUTBOUND_TOKEN}" for c in teams.connector.calls)
    receipts = teams.connector.titled("Receipt")
    assert receipts
    assert all(c.target == status_id for c in receipts)  # in the status card's thread
    shown = shown_seqs(heading(c.card) for c in receipts if c.card is not None)
    assert shown == list(range(job.chain_length))  # every chain event witnessed, once, in order


def adaptive_schema() -> dict[str, Any]:
    shared = shared_dir()
    path = shared / "adaptivecards" / "adaptive-card-1.5.json" if shared else None
    if path is None or not path.is_file():
        pytest.skip("NO ADAPTIVE CARD SCHEMA CHECK: shared/adaptivecards not found")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def test_every_card_of_a_job_is_valid_adaptive_card_1_5(teams: TeamsEnv) -> None:
    validator = Draft6Validator(adaptive_schema())
    job, status_id = await requested(teams)
    await approve(teams, BOB)
    await approve(teams, CAROL)
    status_card = teams.connector.updates(status_id)[-1].card
    assert status_card is not None
    teams.advance(minutes=5)  # the strict tenant removes a role only 5 minutes after its grant
    await press(teams, ALICE, status_card, "done", status_id)
    await teams.settle()
    assert (await teams.service.load(job.job_id)).state == "closed"
    cards = teams.connector.cards() + teams.answered
    assert len(cards) > 20
    for card in cards:
        assert card["version"] == "1.5"
        checked = {k: v for k, v in card.items() if k != "msteams"}  # Teams-only extension
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(checked)]
        assert not errors, (card.get("fallbackText"), errors)


async def test_a_failed_rollback_is_escalated_loudly_in_the_thread(teams: TeamsEnv) -> None:
    job, status_id = await active(teams)
    teams.sim.add_fault(
        Fault("unavailable", method="POST", path="roleAssignmentScheduleRequests", times=10_000)
    )
    status_card = teams.connector.updates(status_id)[-1].card
    assert status_card is not None
    await press(teams, MALLORY, status_card, "kill", status_id)
    await teams.settle()
    job = await teams.service.load(job.job_id)
    assert job.state == "failed"
    assert teams.connector.titled("ROLLBACK FAILED")
    escalations = [c for c in teams.connector.calls if "ESCALATION" in str(c.body.get("text"))]
    assert len(escalations) == 1
    assert DAVE in str(escalations[0].body["text"])
    # ... and why: what the tenant last answered the removal (Graph's code and status;
    # markdown-escaped, as the text is Teams markdown).
    assert "last refusal: ServiceUnavailable \\(Graph 503\\)" in str(escalations[0].body["text"])
    assert escalations[0].target == status_id


async def test_extension_needs_two_fresh_approvals_on_a_new_prompt(teams: TeamsEnv) -> None:
    job, status_id = await active(teams)
    first_end = job.window_end
    status_card = teams.connector.updates(status_id)[-1].card
    assert status_card is not None
    status, body = await press(teams, ALICE, status_card, "extend", status_id)
    await teams.settle()
    assert status == 200
    invoke_card(body)
    message_id, prompt = approval_message(teams, revision=1)
    assert prompt["refresh"]["action"]["data"]["plan_hash"] != job.plan.plan_hash
    await approve(teams, BOB, revision=1)
    assert (await teams.service.load(job.job_id)).window_end == first_end  # one is not enough
    await approve(teams, DAVE_P, revision=1)
    job = await teams.service.load(job.job_id)
    assert job.state == ACTIVE
    assert job.window_end is not None
    assert first_end is not None
    assert job.window_end > first_end
    assert job.plan.revision == 1
    _, closed = approval_message(teams, revision=1)
    assert "actions" not in closed  # decided: no buttons for anyone
    _, old = approval_message(teams, revision=0)
    assert "actions" not in old
    assert message_id != approval_message(teams, revision=0)[0]


async def test_without_a_form_message_the_status_card_is_posted_in_the_thread(
    teams: TeamsEnv,
) -> None:
    activity = teams.invoke(ALICE, "request", form_data(), "")
    del activity["replyToId"]
    status, body = await teams.post(activity)
    await teams.settle()
    assert status == 200
    invoke_card(body)
    posted = teams.connector.calls[0]
    assert posted.method == "POST"
    assert posted.path == f"/v3/conversations/{THREAD}/activities"
    assert posted.card is not None
    assert "Break-glass" in posted.card["fallbackText"]
    status_id = teams.connector.id_of(posted)
    receipts = teams.connector.titled("Receipt")
    assert receipts
    assert all(c.target == status_id for c in receipts)
