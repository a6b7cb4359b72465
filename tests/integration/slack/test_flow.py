"""The whole break-glass flow in a Slack incident channel, end to end over real HTTP."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from adapters.graph.simulated import Fault
from engine.canonical import strict_loads
from engine.job import ACTIVE, KILLED, PENDING
from engine.verify import verify_bundle
from tests.integration.graph.support import DAVE as DAVE_OID
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import (
    OTHER_GRANT,
    REQUEST,
    approve,
    click,
    dm_of,
    ephemerals,
    request_job,
    status_card,
    submit,
    thread,
    thread_texts,
)
from tests.integration.slack.support import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    INCIDENT,
    MALLORY,
    SECRET,
    TOKEN,
)
from tests.support.engine_sim import T0, trust_for
from tests.support.receipts import shown_seqs
from tests.support.waiting import eventually


async def test_whole_job_from_slash_command_to_bundle(env: Env) -> None:
    job_id = (await request_job(env)).job_id
    job = await env.service.load(job_id)
    assert job.state == PENDING
    assert job.requester.principal == "u-alice"
    assert job.channel["channel"] == INCIDENT
    assert {c.params["users"] for c in env.fake.of("conversations.open")} == {BOB, CAROL, DAVE}
    card = status_card(env)
    assert "blocks" in card

    await approve(env, BOB)
    assert (await env.service.load(job_id)).state == PENDING
    await approve(env, CAROL)
    await eventually(lambda: bool(holders(env.sim, USER_ADMIN)))
    await env.settle()
    job = await env.service.load(job_id)
    assert job.state == ACTIVE
    assert holders(env.sim, USER_ADMIN) == {DAVE_OID}
    assert job.verified_after_write is True

    updates_before = len(env.fake.of("chat.update"))
    env.advance(minutes=10)
    await env.service.tick()
    await env.settle()
    assert len(env.fake.of("chat.update")) > updates_before
    updated = env.fake.messages[(INCIDENT, card["ts"])]
    assert "20 min left" in updated["text"] or "20 min left" in json.dumps(updated["blocks"])

    await click(env, MALLORY, INCIDENT, status_card(env), "kill")  # anyone may stop it
    job = await env.service.load(job_id)
    assert job.state == KILLED, job.refusals
    assert holders(env.sim, USER_ADMIN) == set()

    texts = thread_texts(env)
    assert any("Break-glass ended" in t for t in texts)
    assert any("audit summary" in t for t in texts)
    chain = await env.store.chain(job_id)
    assert shown_seqs(texts) == [r.seq for r in chain]  # each once, in order
    for user in (BOB, CAROL, DAVE):
        prompt = dm_of(env, user)
        assert prompt["text"].startswith("Approval recorded")
        assert "actions" not in json.dumps(prompt["blocks"])
    assert status_card(env)["text"].startswith("Break-glass closed")
    (upload,) = env.fake.uploads.values()
    assert upload.thread_ts == card["ts"]
    assert upload.channel == INCIDENT
    bundle: Any = strict_loads(upload.content or b"")
    report = verify_bundle(bundle, trust_for(env.service.keys))
    assert report.valid, report.reasons


async def test_form_errors_are_shown_in_the_modal_and_nothing_is_requested(env: Env) -> None:
    status, body = await submit(env, justification="   ")
    answer = json.loads(body)
    assert status == 200
    assert answer["response_action"] == "errors"
    assert answer["errors"] == {"justification": "justification is required"}
    assert await env.jobs() == []


async def test_engine_refusal_is_shown_in_the_modal_with_the_values_kept(env: Env) -> None:
    status, body = await submit(env, duration_minutes="600")  # above the policy maximum
    answer = json.loads(body)
    assert status == 200
    assert answer["response_action"] == "update"
    shown = json.dumps(answer["view"])
    assert "NOT_ELIGIBLE" in shown
    assert REQUEST["justification"] in shown  # what was typed is still there
    assert await env.jobs() == []
    assert env.fake.of("chat.postMessage") == []


async def test_a_request_for_an_open_jobs_grant_is_refused_to_the_requester(env: Env) -> None:
    """TARGET_BUSY needs the resolved targets and the open jobs: the modal closes, and the
    refusal comes as the ephemeral line a refused submit gets, naming the job."""
    job = await request_job(env)
    posted = len(env.fake.of("chat.postMessage"))
    status, _ = await submit(env)  # the same grant again
    assert status == 200
    refusal = ephemerals(env, ALICE)[-1]
    assert "Refused, nothing was changed: TARGET_BUSY" in refusal
    assert job.job_id in refusal
    assert [j.job_id for j in await env.jobs()] == [job.job_id]
    assert len(env.fake.of("chat.postMessage")) == posted  # no card, no approver asked


async def test_status_lists_open_jobs_with_time_left(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    env.advance(minutes=12)
    await env.sender.command(DAVE, "status")
    await env.settle()
    (reply,) = ephemerals(env, DAVE)
    assert job.job_id in reply
    assert "active" in reply
    assert "18 min left" in reply
    assert "(this channel)" in reply


async def test_status_and_kill_by_app_mention(env: Env) -> None:
    job = await request_job(env)
    body = env.sender.mention_body(CAROL, "status", event_id="Ev0STATUS")
    assert (await env.sender.send(body, "application/json")).status == 200
    body = env.sender.mention_body(CAROL, "kill", event_id="Ev0KILL")
    assert (await env.sender.send(body, "application/json")).status == 200
    await env.settle()
    status, killed = ephemerals(env, CAROL)
    assert job.job_id in status
    assert "Kill recorded" in killed
    assert (await env.service.load(job.job_id)).state == KILLED


async def test_kill_without_a_job_id_asks_which_when_there_are_two(env: Env) -> None:
    first = await request_job(env)
    second = await request_job(env, **OTHER_GRANT)
    await env.sender.command(DAVE, "kill")
    await env.settle()
    reply = ephemerals(env, DAVE)[-1]
    assert first.job_id in reply
    assert second.job_id in reply
    assert {j.state for j in await env.jobs()} == {PENDING}
    await env.sender.command(DAVE, f"kill {second.job_id}")
    await env.settle()
    assert (await env.service.load(second.job_id)).state == KILLED
    assert (await env.service.load(first.job_id)).state == PENDING


async def test_help_and_malformed_commands_get_a_helpful_reply(env: Env) -> None:
    for text in ("", "help", "kill a b", "status now", "grant me admin"):
        answer = await env.sender.command(ALICE, text)
        reply = answer.json()
        assert reply["response_type"] == "ephemeral"
        assert "/breakglass request" in reply["text"], text
    assert env.fake.calls == []


async def test_denial_turns_every_prompt_into_the_result(env: Env) -> None:
    job = await request_job(env)
    await click(env, BOB, f"D{BOB}", dm_of(env, BOB), "deny")
    denied = await env.service.load(job.job_id)
    assert denied.state == "denied"
    for user in (BOB, CAROL, DAVE):
        prompt = dm_of(env, user)
        assert prompt["text"].startswith("Request denied")
        assert "actions" not in json.dumps(prompt["blocks"])  # the buttons are gone
    texts = thread_texts(env)
    assert any("audit summary" in t for t in texts)
    assert not any("Break-glass ended" in t for t in texts)  # no window was ever open
    assert holders(env.sim, USER_ADMIN) == set()


async def test_window_end_warns_then_rolls_back_on_time(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    for minute in (10, 20, 26):
        env.clock.advance(timedelta(minutes=minute) - (env.clock.now() - T0))
        await env.service.tick()
        await env.settle()
    warnings = [t for t in thread_texts(env) if t.startswith(":warning:")]
    assert len(warnings) == 1
    assert f"<@{ALICE}>" in warnings[0]
    env.advance(minutes=5)  # 31 minutes after approval: the window is over
    await env.service.tick()
    await env.settle()
    closed = await env.service.load(job.job_id)
    assert closed.state == "closed"
    assert closed.end_reason == "timebox_expired"
    assert holders(env.sim, USER_ADMIN) == set()
    assert "closed" in status_card(env)["text"]
    assert len(env.fake.uploads) == 1


async def test_secrets_never_reach_the_log(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env.fake.rate_limit("chat.update", times=1, retry_after=0)
    await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    await env.sender.post(b"x=1", {"X-Slack-Signature": "v0=" + "0" * 64})  # a refused one
    await click(env, DAVE, INCIDENT, status_card(env), "kill")
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert len(caplog.records) > 20  # the debug logs of Bolt and slack_sdk were captured
    assert TOKEN not in logged
    assert SECRET not in logged


async def test_clicks_are_acked_before_slack_answers_and_the_work_follows(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    slow = env.fake.hold("chat.update")  # Slack hangs on every card update
    answer = await env.sender.click(CAROL, f"D{CAROL}", dm_of(env, CAROL), "breakglass.approve")
    assert answer.status == 200  # acked while the work still waits for Slack
    await eventually(lambda: bool(holders(env.sim, USER_ADMIN)))
    assert (await env.service.load(job.job_id)).state == ACTIVE
    slow.set()
    await env.settle()
    assert status_card(env)["text"].startswith("Break-glass active")


async def test_failed_rollback_escalates_loudly(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    outage = Fault("unavailable", "POST", "roleAssignmentScheduleRequests", times=10_000)
    env.sim.add_fault(outage)  # the tenant refuses every removal
    await click(env, DAVE, INCIDENT, status_card(env), "kill")
    failed = await env.service.load(job.job_id)
    assert failed.state == "failed"
    (loud,) = [p for p in thread(env) if p.get("reply_broadcast")]
    assert loud["text"].startswith("<!here> :rotating_light:")
    assert "STILL granted" in loud["text"]
    assert DAVE_OID in loud["text"]
    # ... and why: what the tenant last answered the removal (Graph's code and status).
    assert "The tenant's last refusal: ServiceUnavailable (Graph 503)" in loud["text"]
    assert any("ROLLBACK FAILED" in t for t in thread_texts(env))


async def test_extension_asks_again_and_needs_two_fresh_approvals(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    first_end = (await env.service.load(job.job_id)).window_end
    env.advance(minutes=20)
    await click(env, ALICE, INCIDENT, status_card(env), "extend")
    asked = await env.service.load(job.job_id)
    assert asked.extension is not None
    for user in (BOB, CAROL, DAVE):
        assert len(env.fake.posts(f"D{user}")) == 2  # a fresh prompt for the new plan
    await approve(env, BOB)
    assert (await env.service.load(job.job_id)).window_end == first_end  # one is not enough
    await approve(env, DAVE)
    extended = await env.service.load(job.job_id)
    assert extended.extension is None
    assert extended.window_end == "2026-11-25T09:45:00.000Z"  # 10 min left + 15 more
    assert dm_of(env, CAROL)["text"].startswith("Approval recorded")
