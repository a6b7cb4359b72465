"""Slack failing for a while (429, 5xx, ``fatal_error``, ``internal_error``,
``request_timeout``, an error page that is not Slack's JSON): each failure is one log line,
the outbox tries again (never before Slack's ``Retry-After``, which holds back only what it
limits), and each post appears once after the outage."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from engine.job import CLOSED
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import approve, request_job
from tests.integration.slack.support import BOB, CAROL, DAVE, INCIDENT
from tests.support.receipts import shown_seqs

FAR = timedelta(days=1)


def top_level(env: Env, channel: str) -> list[str]:
    """The ts of every message Slack holds in ``channel`` outside a thread."""
    return [
        ts for (ch, ts), m in env.fake.messages.items() if ch == channel and "thread_ts" not in m
    ]


def card_posts_asked(env: Env) -> int:
    return len([p for p in env.fake.posts(INCIDENT) if "thread_ts" not in p])


async def queued(env: Env) -> int:
    return len(await env.store.due("slack", env.clock.now() + FAR))


@pytest.mark.parametrize(
    ("status", "error", "wait"), [(429, "ratelimited", 30), (503, "service_unavailable", 120)]
)
async def test_slack_asking_to_wait_is_not_asked_again_sooner_and_holds_back_only_that_channel(
    env: Env, status: int, error: str, wait: int
) -> None:
    env.fake.fail("chat.postMessage", error, status=status, retry_after=wait, channel=INCIDENT)
    job = await request_job(env)
    for user in (BOB, CAROL, DAVE):  # the prompts in the approvers' DMs went out at once
        assert top_level(env, f"D{user}")
    assert top_level(env, INCIDENT) == []
    asked = card_posts_asked(env)
    assert await queued(env) > 0

    env.advance(seconds=wait - 1)  # an outbox round before Slack's time
    assert await env.slack.deliver_queued(env.clock.now()) == 0
    assert card_posts_asked(env) == asked  # Slack was not asked again

    env.advance(minutes=1)
    assert await env.slack.deliver_queued(env.clock.now()) > 0
    assert await queued(env) == 0
    (card,) = top_level(env, INCIDENT)
    texts = env.fake.thread(INCIDENT, card)
    assert shown_seqs(texts) == [r.seq for r in await env.store.chain(job.job_id)]


TRANSIENT = [
    ("service_unavailable", 503, "text/html"),
    ("internal_error", 200, "text/html"),
    ("fatal_error", 200, "text/html"),
    ("request_timeout", 200, "text/html"),
    ("", 502, "text/html"),  # an error page from Slack's edge or a proxy
    ("", 502, "application/json"),  # the same, labelled JSON
]


async def test_an_outage_of_every_transient_kind_is_a_line_each_and_each_post_once_after(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    for error, status, page_type in TRANSIENT:  # answered in this order, once each
        env.fake.fail("chat.postMessage", error, status=status, page_type=page_type)
    job = await request_job(env)
    for _ in range(len(TRANSIENT)):  # outbox rounds: each meets what is left of the outage
        env.advance(minutes=3)  # past the backoff (5 s doubling) of the rounds so far
        await env.slack.deliver_queued(env.clock.now())
    assert [f.times for f in env.fake.faults["chat.postMessage"]] == [0] * len(TRANSIENT)
    assert await queued(env) == 0
    await approve(env, BOB)
    await approve(env, CAROL)
    env.advance(minutes=31)
    await env.service.tick()
    await env.settle()
    assert (await env.service.load(job.job_id)).state == CLOSED

    (card,) = top_level(env, INCIDENT)  # one card, one prompt each: nothing posted twice
    for user in (BOB, CAROL, DAVE):
        assert len(top_level(env, f"D{user}")) == 1
    texts = env.fake.thread(INCIDENT, card)
    assert shown_seqs(texts) == [r.seq for r in await env.store.chain(job.job_id)]
    assert len([t for t in texts if t.startswith("Break-glass audit summary")]) == 1
    assert len(env.fake.uploads) == 1
    answered = {code for method, code in env.fake.refusals if method == "chat.postMessage"}
    assert answered == {e or f"http_{s}" for e, s, _ in TRANSIENT}
    ours = [r for r in caplog.records if r.name.startswith("breakglass")]
    assert not [r for r in ours if r.exc_info], "a transient answer is one line, no traceback"
    for record in ours:
        if record.levelno >= logging.WARNING:  # each names Slack's method and answer
            assert "Slack chat.postMessage failed: " in record.getMessage()
