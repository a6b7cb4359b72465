"""Our messages stay within what Slack takes, at the longest our inputs allow, and what Slack
refuses for good (an expired trigger, a deleted or frozen card) ends cleanly: the person or
the log is told once, the job goes on, and nothing waits in the outbox for ever.

The env's fake Slack checks every message and modal against Slack's limits, and the env
fails any test in which Slack would have refused one as malformed (conftest ``MALFORMED``).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from adapters.slack import refs as kinds
from cards.slack import BLOCKS_TEXT_BUDGET, text_size
from engine.job import ACTIVE, KILLED
from tests.integration.slack.conftest import Env
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.steps import (
    approve,
    click,
    ephemerals,
    request_job,
    status_card,
    thread_texts,
)
from tests.integration.slack.support import ALICE, BOB, CAROL, DAVE, INCIDENT
from tests.support.waiting import eventually

# The character mrkdwn escaping makes longest (``&`` is ``&amp;``), at every input limit.
LONGEST = {"justification": "&" * 500, "ticket": "&" * 100}


def bot_messages(fake: FakeSlack) -> list[dict[str, object]]:
    methods = ("chat.postMessage", "chat.update", "chat.postEphemeral")
    return [c.params for c in fake.calls if c.method in methods]


def largest_blocks_text(fake: FakeSlack) -> int:
    return max(text_size(m.get("blocks") or []) for m in bot_messages(fake))


async def active_job(env: Env) -> str:
    job = await request_job(env, **LONGEST)
    await approve(env, BOB)
    await approve(env, CAROL)
    assert (await env.service.load(job.job_id)).state == ACTIVE
    return job.job_id


async def ended_by_kill(env: Env, job_id: str) -> None:
    env.advance(minutes=6)  # the tenant takes a removal 5 minutes after the activation
    await click(env, DAVE, INCIDENT, status_card(env), "kill")
    assert (await env.service.load(job_id)).state == KILLED
    later = env.clock.now() + timedelta(days=1)
    assert await env.store.due("slack", later, 100) == []  # nothing waits to be retried


def audit_summary_posted(env: Env) -> bool:
    return any(t.startswith("Break-glass audit summary") for t in thread_texts(env))


async def test_a_job_with_the_longest_inputs_is_shown_whole(env: Env) -> None:
    job_id = await active_job(env)
    prompt = json.dumps(env.fake.posts(f"D{BOB}")[0]["blocks"])
    assert "&amp;" * 500 in prompt  # the whole justification, escaped: 2,500 characters
    await ended_by_kill(env, job_id)
    assert audit_summary_posted(env)
    assert env.fake.uploads
    assert all(u.channel == INCIDENT for u in env.fake.uploads.values())
    assert largest_blocks_text(env.fake) <= BLOCKS_TEXT_BUDGET
    assert not env.fake.refusals


async def test_a_hostile_agents_tool_names_cannot_keep_the_audit_summary_out(
    env: Env,
) -> None:
    """An agent's tool calls are receipted under the names it chose (the gateway refuses an
    unknown tool and receipts it). Twenty-five names of 300 ``&`` (``&amp;`` once escaped)
    put some 30,000 characters in the audit summary's blocks: Slack refuses that
    (msg_blocks_too_long), and the summary and the proof bundle after it never came."""
    job_id = await active_job(env)
    for n in range(25):
        name = f"{n:02d}" + "&" * 298
        outcome = await env.executor.gateway.call(job_id, "not-a-token", name, {})
        assert not outcome.allowed
    chain = await env.store.chain(job_id)
    assert sum(r.event["event_type"] == "tool_call" for r in chain) >= 25
    await ended_by_kill(env, job_id)
    assert audit_summary_posted(env)
    assert [u for u in env.fake.uploads.values() if u.channel == INCIDENT]  # the bundle too
    assert largest_blocks_text(env.fake) <= BLOCKS_TEXT_BUDGET
    assert not [r for r in env.fake.refusals if r[1] == "msg_blocks_too_long"]


async def test_a_form_opened_after_its_trigger_expired_says_so_and_files_nothing(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack takes a trigger id for 3 seconds: a bot slower than that cannot open the form.
    The person is told to try again, the log names Slack's answer, nothing else happens."""
    caplog.set_level(logging.INFO, logger="breakglass")
    slow = env.fake.hold("views.open")
    assert (await env.sender.command(ALICE, "request")).status == 200
    await eventually(lambda: bool(env.fake.of("views.open")))  # in, its answer held
    env.advance(seconds=3.5)
    slow.set()
    await env.settle()
    assert env.fake.refusals == [("views.open", "expired_trigger_id")]
    assert ephemerals(env, ALICE) == ["The request form did not open; please try again."]
    (line,) = [r for r in caplog.records if "not opened" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.exc_info is None
    assert "expired_trigger_id" in line.getMessage()
    assert await env.jobs() == []
    # A new command carries a new trigger, and the form opens.
    assert (await env.sender.command(ALICE, "request")).status == 200
    await env.settle()
    assert env.fake.refusals == [("views.open", "expired_trigger_id")]


async def test_a_deleted_status_card_is_posted_again_and_the_job_ends_under_it(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """An admin (or the workspace's retention policy) deletes the card: chat.update answers
    message_not_found for good. The card is posted again, with its Kill button, and the
    result, the audit summary and the bundle follow in its thread."""
    job_id = await active_job(env)
    gone = status_card(env)
    env.fake.delete_message(INCIDENT, gone["ts"])  # it has replies: a tombstone stays
    caplog.set_level(logging.WARNING, logger="breakglass")
    env.advance(minutes=10)
    await env.service.tick()  # the countdown updates the card: it is gone
    await env.settle()
    card = status_card(env)
    assert card["ts"] != gone["ts"]
    assert card["text"].startswith("Break-glass active")
    refs = await env.store.message_refs(job_id, kinds.PLATFORM)
    assert [r.ref["ts"] for r in refs if r.kind == kinds.STATUS] == [card["ts"]]
    said = [r.getMessage() for r in caplog.records if "is gone" in r.getMessage()]
    assert said == [
        f"job {job_id}: its status card {gone['ts']} in {INCIDENT} is gone (Slack chat.update "
        f"answered message_not_found); posted again"
    ]
    await ended_by_kill(env, job_id)  # Kill pressed on the new card counts
    assert audit_summary_posted(env)
    assert any(t.startswith("Break-glass ended") for t in thread_texts(env))
    assert [u for u in env.fake.uploads.values() if u.thread_ts == card["ts"]]


async def test_a_card_the_workspace_no_longer_lets_the_bot_edit_is_left_as_it_is(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The workspace allows edits for a minute after posting (a setting of its admins):
    every later chat.update is edit_window_closed. The card and the DM prompts stay as they
    are; the thread says so once; the job ends and is told in full, nothing left queued."""
    env.fake.edit_window = 60.0
    job_id = await active_job(env)  # the approvals came within the minute
    card = status_card(env)
    caplog.set_level(logging.WARNING, logger="breakglass")
    env.advance(minutes=5)
    await ended_by_kill(env, job_id)
    assert status_card(env)["ts"] == card["ts"]
    assert ("chat.update", "edit_window_closed") in env.fake.refusals
    frozen = [t for t in thread_texts(env) if "can no longer be updated" in t]
    assert len(frozen) == 1
    assert audit_summary_posted(env)
    assert any(t.startswith("Break-glass ended") for t in thread_texts(env))
    lines = [r.getMessage() for r in caplog.records if "edit_window_closed" in r.getMessage()]
    assert any(f"job {job_id}: its status card" in line for line in lines)
    assert all(r.exc_info is None for r in caplog.records)
    refs = await env.store.message_refs(job_id, kinds.PLATFORM)
    assert all(r.ref.get("closed") for r in refs if r.kind.startswith("approval:"))
