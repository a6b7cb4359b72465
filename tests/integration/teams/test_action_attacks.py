"""People doing what they may not, and Teams doing what it does: each press is refused or
harmless, nothing changes, and the refusal is recorded (job.refusals or the log)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.job import PENDING, Job
from tests.integration.teams.conftest import (
    ALICE,
    BOB,
    CAROL,
    ERIN,
    MALLORY,
    OTHER_CHANNEL,
    Person,
    TeamsEnv,
)
from tests.integration.teams.flow import (
    actions,
    approval_message,
    form_data,
    invoke_card,
    press,
    requested,
)


def message_reply(body: Any) -> str:
    assert body["statusCode"] == 200, body
    assert body["type"] == "application/vnd.microsoft.activity.message", body
    return str(body["value"])


async def forged_approve(env: TeamsEnv, person: Person, job: Job, **kw: Any) -> tuple[int, Any]:
    """What a client can always send: the approve data, whatever card it was shown."""
    message_id, _ = approval_message(env)
    data = {"verb": "approve", "job_id": job.job_id, "plan_hash": job.plan.plan_hash}
    return await env.post(env.invoke(person, "approve", data, message_id, **kw))


async def unchanged(env: TeamsEnv, job: Job, calls: int) -> Job:
    now = await env.service.load(job.job_id)
    assert now.state == PENDING
    assert now.plan.decisions == job.plan.decisions
    assert now.chain_length == job.chain_length
    assert await env.store.approvals(job.job_id) == []
    assert len(env.connector.calls) == calls
    return now


@pytest.mark.parametrize(
    ("person", "reason"),
    [(ALICE, "SELF_APPROVAL"), (ERIN, "NOT_AN_APPROVER"), (MALLORY, "IDENTITY_UNRESOLVED")],
)
async def test_approval_by_someone_who_may_not_is_refused(
    teams: TeamsEnv, person: Person, reason: str
) -> None:
    job, _ = await requested(teams)
    calls = len(teams.connector.calls)
    status, body = await forged_approve(teams, person, job)
    await teams.settle()
    assert status == 200
    assert reason in message_reply(body)
    now = await unchanged(teams, job, calls)
    assert now.refusals[-1]["reason"] == reason
    assert now.refusals[-1]["actor"] in {f"teams:{person.aad}", f"teams:{person.user_id}"}


async def test_non_approver_refresh_shows_no_approve_button(teams: TeamsEnv) -> None:
    await requested(teams)
    message_id, shared = approval_message(teams)
    for person in (ALICE, ERIN, MALLORY):
        status, body = await press(teams, person, shared, "refresh", message_id)
        assert status == 200
        assert set(actions(invoke_card(body))) == {"refresh"}


async def test_redelivered_invoke_with_new_activity_id_counts_once(teams: TeamsEnv) -> None:
    job, _ = await requested(teams)
    message_id, shared = approval_message(teams)
    _, body = await press(teams, BOB, shared, "refresh", message_id)
    approver_card = invoke_card(body)
    first = await press(teams, BOB, approver_card, "approve", message_id, id="1700000000111")
    again = await press(teams, BOB, approver_card, "approve", message_id, id="1700000000222")
    await teams.settle()
    assert first == again
    now = await teams.service.load(job.job_id)
    assert now.plan.approvers() == ["u-bob"]
    assert len(await teams.store.approvals(job.job_id)) == 1
    assert now.chain_length == job.chain_length + 1


async def test_redelivered_request_submit_makes_one_job(teams: TeamsEnv) -> None:
    job, form_id = await requested(teams)
    status, body = await teams.post(teams.invoke(ALICE, "request", form_data(), form_id))
    await teams.settle()
    assert status == 200
    invoke_card(body)
    assert [j.job_id for j in await teams.service.open_jobs()] == [job.job_id]


async def test_a_used_form_submitted_by_someone_else_makes_no_second_job(
    teams: TeamsEnv,
) -> None:
    job, form_id = await requested(teams)
    status, body = await teams.post(teams.invoke(ERIN, "request", form_data(), form_id))
    await teams.settle()
    assert status == 200
    assert job.job_id in invoke_card(body)["fallbackText"]
    assert [j.job_id for j in await teams.service.open_jobs()] == [job.job_id]
    assert (await teams.service.load(job.job_id)).requester.principal == "u-alice"


async def test_approval_from_a_mobile_client_takes_the_same_path(teams: TeamsEnv) -> None:
    job, _ = await requested(teams)
    mobile = [{"type": "clientInfo", "platform": "Android", "locale": "en-US"}]
    message_id, shared = approval_message(teams)
    _, body = await press(teams, CAROL, shared, "refresh", message_id, entities=mobile)
    _, body = await press(teams, CAROL, invoke_card(body), "approve", message_id, entities=mobile)
    await teams.settle()
    assert set(actions(invoke_card(body))) == {"withdraw"}
    assert (await teams.service.load(job.job_id)).plan.approvers() == ["u-carol"]


async def test_learned_user_id_joins_the_refresh_list(teams: TeamsEnv) -> None:
    """Carol is configured by aadObjectId; once seen, her 29: id is refreshed too."""
    await requested(teams)
    message_id, shared = approval_message(teams)
    await press(teams, CAROL, shared, "refresh", message_id)
    await press(teams, BOB, shared, "refresh", message_id)
    _, body = await press(teams, BOB, shared, "refresh", message_id)
    await press(teams, BOB, invoke_card(body), "approve", message_id)
    await teams.settle()
    _, updated = approval_message(teams)
    assert "29:carol" in updated["refresh"]["userIds"]


HOSTILE = (
    "<at>everyone</at> **URGENT** [approve here](https://evil.example/x) "
    "![](https://evil.example/p.png) <script>alert(1)</script> \u202egnp.exe @channel"
)


def texts_outside_runs(node: Any, path: str = "") -> list[str]:
    """Every card string that could render as markup: anything but TextRun text."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and node.get("type") == "TextRun":
                continue
            found.extend(texts_outside_runs(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for item in node:
            found.extend(texts_outside_runs(item, path))
    elif isinstance(node, str):
        found.append(node)
    return found


async def test_hostile_justification_is_inert_in_every_card(teams: TeamsEnv) -> None:
    job, _ = await requested(teams, justification=HOSTILE)
    assert job.request["justification"] == HOSTILE
    cards = teams.connector.cards()
    assert len(cards) >= 3
    for card in cards:
        blob = json.dumps(card)
        assert "entities" not in blob
        assert "Action.OpenUrl" not in blob
        assert '"Image"' not in blob
        assert not any("evil.example" in text for text in texts_outside_runs(card))
    assert any("evil.example" in json.dumps(card) for card in cards)  # shown, as plain text


async def test_request_outside_an_incident_channel_is_refused(
    teams: TeamsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    thread = f"{OTHER_CHANNEL};messageid=1"
    status, body = await teams.post(
        teams.invoke(ALICE, "request", form_data(), "msg-1", conversation=thread)
    )
    assert status == 200
    assert "incident channels" in message_reply(body)
    assert await teams.service.open_jobs() == []
    assert "NOT_AN_INCIDENT_CHANNEL" in caplog.text
    status, _ = await teams.post(teams.message(ALICE, "request", conversation=thread))
    assert status == 202
    assert teams.connector.calls[-1].body.get("text", "").startswith("Break-glass works only")


@pytest.mark.parametrize(
    "data",
    [
        {"verb": "approve", "job_id": "bg-000000000000"},  # no plan hash
        {"verb": "approve", "job_id": "x/../../y", "plan_hash": "A" * 43},
        {"verb": "approve", "job_id": "bg-000000000000", "plan_hash": "A" * 43, "extra": 1},
        {"verb": "sudo", "job_id": "bg-000000000000"},
    ],
)
async def test_malformed_button_data_is_refused(
    teams: TeamsEnv, data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    status, body = await teams.post(teams.invoke(BOB, str(data["verb"]), data, "msg-1"))
    assert status == 200
    assert message_reply(body) == "That button is not valid."
    assert "INVALID_ACTION" in caplog.text
    assert teams.connector.calls == []


async def test_invalid_form_comes_back_with_the_error(teams: TeamsEnv) -> None:
    await requested(teams)
    jobs = await teams.service.open_jobs()
    status, body = await teams.post(
        teams.invoke(ALICE, "request", form_data(justification="   ", duration_minutes="0"), "m9")
    )
    assert status == 200
    card = invoke_card(body)
    assert "request" in actions(card)
    assert card["body"][1]["style"] == "attention"  # the error banner
    assert await teams.service.open_jobs() == jobs


async def test_request_the_engine_refuses_comes_back_with_the_reason(teams: TeamsEnv) -> None:
    status, body = await teams.post(teams.invoke(MALLORY, "request", form_data(), "m7"))
    assert status == 200
    card = invoke_card(body)
    assert "IDENTITY_UNRESOLVED" in json.dumps(card)
    assert await teams.service.open_jobs() == []


async def test_a_request_for_an_open_jobs_grant_comes_back_with_target_busy(
    teams: TeamsEnv,
) -> None:
    job, _ = await requested(teams)
    jobs = await teams.service.open_jobs()
    status, body = await teams.post(teams.invoke(ALICE, "request", form_data(), "m8"))
    assert status == 200
    card = invoke_card(body)
    assert "request" in actions(card)  # the form again, with the reason
    assert card["body"][1]["style"] == "attention"
    shown = json.dumps(card)
    assert "TARGET_BUSY" in shown
    assert job.job_id in shown
    assert await teams.service.open_jobs() == jobs
