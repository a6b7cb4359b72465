"""Slack being slow, rate-limited, forbidding files or gone never holds up a job; what it
missed is delivered later, once, from the outbox."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from engine.job import ACTIVE, CLOSED, KILLED
from engine.ports import ChatEvent
from tests.integration.graph.support import DAVE as DAVE_OID
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import (
    approve,
    click,
    request_job,
    status_card,
    thread_texts,
)
from tests.integration.slack.support import BOB, CAROL, DAVE, INCIDENT
from tests.support.receipts import shown_seqs


async def queued(env: Env) -> int:
    far = env.clock.now() + timedelta(days=1)
    return len(await env.store.due("slack", far))


async def test_429_on_post_is_retried_after_retry_after(env: Env) -> None:
    env.fake.rate_limit("chat.postMessage", times=1, retry_after=0)  # slack_sdk adds < 1 s
    started = time.monotonic()
    job = await request_job(env)
    assert time.monotonic() - started < 5
    attempts = env.fake.of("chat.postMessage")
    assert attempts[0].params == attempts[1].params  # the same post, sent again
    assert len(env.fake.posts(INCIDENT, thread_ts=None)) >= 2
    assert status_card(env)["text"].startswith("Break-glass awaiting approval")
    assert await queued(env) == 0
    assert (await env.service.load(job.job_id)).state == "pending_approval"


async def test_rate_limited_slack_never_delays_the_window_end(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    env.fake.rate_limit("chat.postMessage", times=1000, retry_after=60)  # far above our cap
    env.fake.rate_limit("chat.update", times=1000, retry_after=60)
    started = time.monotonic()
    env.advance(minutes=31)
    await env.service.tick()
    await env.settle()
    assert time.monotonic() - started < 5  # a long Retry-After is not sat out in line
    closed = await env.service.load(job.job_id)
    assert closed.state == CLOSED
    assert closed.ended_at == "2026-11-25T09:31:00.000Z"
    assert holders(env.sim, USER_ADMIN) == set()
    items = await env.store.due("slack", env.clock.now() + timedelta(days=1))
    assert items
    # The outbox waits at least as long as Slack asked before trying again.
    assert await env.slack.deliver_queued(env.clock.now()) == 0
    later = await env.store.due("slack", env.clock.now() + timedelta(seconds=59))
    assert later == []


async def test_slack_down_the_job_still_rolls_back_and_the_posts_follow(env: Env) -> None:
    job = await request_job(env)
    await env.fake.go_down()
    await approve_offline(env, job.job_id)
    await env.settle()
    assert (await env.service.load(job.job_id)).state == ACTIVE
    assert holders(env.sim, USER_ADMIN) == {DAVE_OID}
    env.advance(minutes=31)
    await env.service.tick()
    await env.settle()
    closed = await env.service.load(job.job_id)
    assert closed.state == CLOSED
    assert holders(env.sim, USER_ADMIN) == set()
    assert await queued(env) > 0

    assert await env.slack.deliver_queued(env.clock.now()) == 0  # still down: kept
    await env.fake.come_back()
    env.advance(minutes=15)  # past the backoff
    delivered = await env.slack.deliver_queued(env.clock.now())
    assert delivered > 0
    assert await queued(env) == 0
    texts = thread_texts(env)
    assert any("Break-glass ended: rolled back and verified" in t for t in texts)
    assert any("audit summary" in t for t in texts)
    assert len(env.fake.uploads) == 1
    seqs = shown_seqs(texts)
    assert sorted(seqs) == list(range(len(await env.store.chain(job.job_id))))
    assert "closed" in status_card(env)["text"]
    for user in (BOB, CAROL, DAVE):
        assert env.fake.posts(f"D{user}")  # the prompts went out, and then were closed

    calls = len(env.fake.calls)
    assert await env.slack.deliver_queued(env.clock.now() + timedelta(days=1)) == 0
    assert len(env.fake.calls) == calls  # nothing is posted twice


async def approve_offline(env: Env, job_id: str) -> None:
    """Approvals while the bot cannot reach Slack (clicks still reach the bot)."""
    from tests.integration.slack.steps import dm_of

    for user in (BOB, CAROL):
        await click(env, user, f"D{user}", dm_of(env, user), "approve")
    assert (await env.service.load(job_id)).state == ACTIVE


async def test_redelivering_an_event_repeats_no_post(env: Env) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    records = await env.store.chain(job.job_id)
    now = env.clock.now()
    doc = (await env.service.load(job.job_id)).to_json()
    calls = len(env.fake.calls)
    for kind in ("receipts", "ask_approvers", "update_cards"):
        detail = {"principals": ["u-carol"], "revision": 0} if kind == "ask_approvers" else {}
        await env.slack.deliver(ChatEvent(kind, doc, detail, records, now))
    assert len(env.fake.calls) == calls


async def test_files_not_allowed_bundle_goes_inline_or_as_a_note(env: Env) -> None:
    env.fake.files_allowed = False
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    env.advance(minutes=5)  # the strict tenant removes a role only 5 minutes after its grant
    await click(env, DAVE, INCIDENT, status_card(env), "kill")
    assert (await env.service.load(job.job_id)).state == KILLED
    assert env.fake.uploads == {}
    note = [t for t in thread_texts(env) if "files are not allowed" in t.lower()]
    assert len(note) == 1
    assert await queued(env) == 0


async def test_bot_not_in_channel_is_logged_not_queued_and_the_card_follows_the_invite(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.channels.discard(INCIDENT)
    job = await request_job(env)
    assert (await env.service.load(job.job_id)).state == "pending_approval"
    assert await queued(env) == 0  # nothing waits in the outbox ahead of other jobs
    assert any("channel_not_found" in r.getMessage() for r in caplog.records)
    env.fake.channels.add(INCIDENT)
    env.advance(minutes=1)
    await approve(env, BOB)  # the job's next event tries the channel again
    assert json.dumps(status_card(env)["blocks"])


async def test_a_hanging_slack_holds_a_kill_no_longer_than_the_budget(
    env: Env,
) -> None:
    job = await request_job(env)
    await approve(env, BOB)
    await approve(env, CAROL)
    env.slack.chat.config = replace(env.slack.config, deliver_budget=0.3)
    env.fake.hold("chat.update")  # Slack takes every card update and never answers
    env.advance(minutes=5)  # the strict tenant removes a role only 5 minutes after its grant
    started = time.monotonic()
    await click(env, DAVE, INCIDENT, status_card(env), "kill")
    assert (await env.service.load(job.job_id)).state == KILLED
    assert holders(env.sim, USER_ADMIN) == set()
    assert time.monotonic() - started < 5
    assert await queued(env) > 0  # the updates wait in the outbox
