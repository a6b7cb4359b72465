"""Attacks on the Slack edge and flow: each is refused or made harmless, nothing changes, and the
refusal is recorded (in the job's refusal log or the service log)."""

from __future__ import annotations

import json
import logging

import pytest

from engine.job import Job
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack import steps
from tests.integration.slack.conftest import Env
from tests.integration.slack.support import (
    ALICE,
    BOB,
    CAROL,
    FORM,
    MALLORY,
    SECRET,
    form_values,
    signature,
    signed_headers,
)

EDGE = "breakglass.slack.edge"


async def chain_of(env: Env, job: Job) -> list[object]:
    return [r.event for r in await env.store.chain(job.job_id)]


def refused(caplog: pytest.LogCaptureFixture, logger: str, words: str) -> bool:
    return any(r.name == logger and words in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------- signature and replay


async def test_forged_signature_is_401_and_nothing_happens(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    body = env.sender.command_body(ALICE, "request")
    headers = {"Content-Type": FORM, **signed_headers(body, secret="not-the-signing-secret")}
    answer = await env.sender.post(body, headers)
    await env.settle()
    assert answer.status == 401
    assert env.fake.calls == []
    assert await env.jobs() == []
    assert refused(caplog, EDGE, "bad signature")


async def test_request_older_than_five_minutes_is_401(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    body = env.sender.command_body(ALICE, "request")
    answer = await env.sender.post(body, {"Content-Type": FORM, **signed_headers(body, age=301)})
    await env.settle()
    assert answer.status == 401
    assert env.fake.calls == []
    assert refused(caplog, EDGE, "stale timestamp")


@pytest.mark.parametrize("timestamp", ["", "abc", "1e9", "-5", "1764061200.5", "9" * 40])
async def test_malformed_timestamp_is_401_not_500(
    env: Env, caplog: pytest.LogCaptureFixture, timestamp: str
) -> None:
    body = env.sender.command_body(ALICE, "status")
    sig = signature(SECRET, 0, body)
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": timestamp}
    answer = await env.sender.post(body, headers | {"X-Slack-Signature": sig})
    assert answer.status == 401
    assert env.fake.calls == []
    assert refused(caplog, EDGE, "malformed timestamp")


async def test_non_utf8_body_is_401_not_500(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    body = env.sender.command_body(ALICE, "status") + b"%FF&x=\xff\xfe"
    answer = await env.sender.post(body, {"Content-Type": FORM, **signed_headers(body)})
    assert answer.status == 401
    assert refused(caplog, EDGE, "not UTF-8")
    declared = {"Content-Type": FORM + "; charset=latin-1", **signed_headers(b"x=1")}
    assert (await env.sender.post(b"x=1", declared)).status == 401
    assert env.fake.calls == []


async def test_replayed_signed_request_is_refused(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    body = env.sender.command_body(ALICE, "request")
    headers = {"Content-Type": FORM, **signed_headers(body)}
    first = await env.sender.post(body, headers)
    again = await env.sender.post(body, headers)
    await env.settle()
    assert (first.status, again.status) == (200, 401)
    assert len(env.fake.of("views.open")) == 1
    assert refused(caplog, EDGE, "replayed")


async def test_retried_event_delivery_acts_once(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "breakglass.slack")
    job = await steps.request_job(env)
    before = await chain_of(env, job)
    answers = []
    for retry in (None, "1", "2"):  # Slack re-sends the event with X-Slack-Retry-Num
        body = env.sender.mention_body(CAROL, f"kill {job.job_id}", event_id="Ev0KILL1")
        headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        extra = headers if retry else {}
        answers.append(await env.sender.send(body, "application/json", extra))
    await env.settle()
    assert [a.status for a in answers] == [200, 200, 200]
    killed = await env.service.load(job.job_id)
    assert killed.state == "killed"
    after = await chain_of(env, job)
    assert len(after) > len(before)
    assert len([e for e in after if e not in before and e["event_type"] == "run_end"]) == 1
    assert len(steps.ephemerals(env, CAROL)) == 1  # one reply, not three
    assert refused(caplog, "breakglass.slack", "duplicate delivery of event Ev0KILL1 ignored")


# -------------------------------------------------------------------- who may decide


async def test_requester_cannot_approve_own_request(env: Env) -> None:
    job = await steps.request_job(env, BOB)  # Bob is an approver, and here the requester
    before = await chain_of(env, job)
    await steps.approve(env, BOB, on_dm_of=CAROL)  # the button from Carol's DM, clicked by Bob
    after = await env.service.load(job.job_id)
    assert after.state == "pending_approval"
    assert await chain_of(env, job) == before
    assert [r["reason"] for r in after.refusals] == ["SELF_APPROVAL"]
    assert "SELF_APPROVAL" in steps.ephemerals(env, BOB)[-1]
    assert holders(env.sim, USER_ADMIN) == set()


@pytest.mark.parametrize(
    ("user", "reason"), [(ALICE, "NOT_AN_APPROVER"), (MALLORY, "IDENTITY_UNRESOLVED")]
)
async def test_non_approver_clicking_approve_changes_nothing(
    env: Env, user: str, reason: str
) -> None:
    job = await steps.request_job(env, BOB)
    await steps.approve(env, CAROL)
    before = await chain_of(env, job)
    await steps.approve(env, user, on_dm_of=CAROL)
    after = await env.service.load(job.job_id)
    assert after.state == "pending_approval"
    assert await chain_of(env, job) == before
    assert after.refusals[-1]["reason"] == reason
    assert after.refusals[-1]["actor"] == f"slack:{user}"
    assert reason in steps.ephemerals(env, user)[-1]
    assert holders(env.sim, USER_ADMIN) == set()


async def test_double_click_counts_once(env: Env) -> None:
    job = await steps.request_job(env)
    prompt = steps.dm_of(env, BOB)
    await steps.click(env, BOB, f"D{BOB}", prompt, "approve")
    before = await chain_of(env, job)
    await steps.click(env, BOB, f"D{BOB}", prompt, "approve")
    assert await chain_of(env, job) == before
    assert len(await env.store.approvals(job.job_id)) == 1
    assert (await env.service.load(job.job_id)).state == "pending_approval"


async def test_an_unknown_plan_and_foreign_buttons_are_refused(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    job = await steps.request_job(env)
    before = await chain_of(env, job)
    prompt = steps.dm_of(env, BOB)
    stale = f"approve|{job.job_id}|{'A' * 42}E"  # a well-formed hash the job never had
    await env.sender.click(BOB, f"D{BOB}", prompt, "breakglass.approve", value=stale)
    await env.settle()
    await env.sender.click(BOB, f"D{BOB}", prompt, "breakglass.approve", value="kill|x|y")
    await env.settle()
    after = await env.service.load(job.job_id)
    assert [r["reason"] for r in after.refusals] == ["PLAN_UNKNOWN"]
    assert await chain_of(env, job) == before
    replies = steps.ephemerals(env, BOB)
    assert "PLAN_UNKNOWN" in replies[0]
    assert "not one breakglass knows" in replies[1]
    assert refused(caplog, "breakglass.slack", "refused click by UBOB")


# ------------------------------------------------------------------ what people type


HOSTILE = (
    "<!channel> <!here|here> <@UBOB> <http://evil.example|bank login> *bold* _it_ ~s~ "
    "`code` > quote :white_check_mark: @everyone www.evil.example &amp; \u202egnp.exe"
)
RAW = ["<!channel>", "<!here|", "<@UBOB>", "<http://evil", "*bold*", "`code`", "\u202e"]


async def test_hostile_justification_is_inert_everywhere(env: Env) -> None:
    job = await steps.request_job(env, justification=HOSTILE, ticket="<!subteam^S1|oncall>")
    assert job.request["justification"] == HOSTILE  # stored as typed, shown inert
    await steps.approve(env, BOB)
    await env.sender.command(ALICE, "status")
    await env.settle()
    sent = env.fake.texts()
    assert "evil" in sent  # it was shown ...
    for raw in [*RAW, "<!subteam"]:
        assert raw not in sent, raw  # ... but never as markup
    assert "&lt;!channel&gt;" in sent


async def test_hostile_command_text_is_echoed_inert(env: Env) -> None:
    answer = await env.sender.command(ALICE, "<!channel> *now*")
    assert answer.status == 200
    reply = answer.json()["text"]
    assert "<!channel>" not in reply
    assert "*now*" not in reply
    assert "Sorry, unknown command" in reply


# ------------------------------------------------------------------- where and who


async def test_commands_outside_incident_channels_do_nothing(env: Env) -> None:
    answer = await env.sender.command(ALICE, "request", channel="CRANDOM0001")
    await env.settle()
    assert "only in the configured incident channels" in answer.json()["text"]
    assert env.fake.of("views.open") == []


async def test_a_non_requester_gets_no_form(env: Env) -> None:
    answer = await env.sender.command(MALLORY, "request")
    await env.settle()
    assert "not in the requester group" in answer.json()["text"]
    assert env.fake.of("views.open") == []


async def test_forged_form_context_cannot_move_a_job_to_another_channel(env: Env) -> None:
    view = {
        "type": "modal",
        "callback_id": "breakglass.request",
        "id": "V1",
        "hash": "h",
        "private_metadata": json.dumps({"channel": "CRANDOM0001"}),
    }
    answer = await env.sender.submit(ALICE, view, form_values(**steps.REQUEST))
    await env.settle()
    assert answer.json()["response_action"] == "update"
    assert "incident channels" in json.dumps(answer.json()["view"])
    assert await env.jobs() == []


async def test_anyone_in_the_channel_may_kill_and_is_named(env: Env) -> None:
    job = await steps.request_job(env)
    await env.sender.command(MALLORY, "kill")  # the channel's one job; stopping is safe
    await env.settle()
    killed = await env.service.load(job.job_id)
    assert killed.state == "killed"
    assert killed.ended_by == "slack:UMALLORY"
    assert "Kill recorded" in steps.ephemerals(env, MALLORY)[-1]
