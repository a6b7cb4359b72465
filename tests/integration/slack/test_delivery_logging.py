"""What a failed delivery leaves in the log: one line each, no traceback; a refused token is
said once, loudly, with what the operator must do; a channel the bot is not in names the
invite to make, and the requester is told."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import approve, request_job, status_card
from tests.integration.slack.support import ALICE, BOB, CAROL, INCIDENT

TOKEN_LINE = "the bot token is invalid or revoked"


def lines(caplog: pytest.LogCaptureFixture, text: str, level: int = logging.WARNING) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if text in r.getMessage() and r.levelno >= level and r.name.startswith("breakglass")
    ]


async def retry_all(env: Env, minutes: int = 15) -> None:
    env.advance(minutes=minutes)  # past the outbox's backoff
    await env.slack.deliver_queued(env.clock.now())
    await env.settle()


async def test_a_failed_delivery_is_one_line_without_a_traceback(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.fail("chat.postMessage", "internal_error", times=100)
    job = await request_job(env)
    await retry_all(env)
    failed = [r for r in caplog.records if "chat delivery to slack failed" in r.getMessage()]
    assert failed
    for record in failed:
        assert not record.exc_info
        line = record.getMessage()
        assert job.job_id in line
        assert "chat.postMessage" in line
        assert "internal_error" in line
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("breakglass")]


async def test_bot_not_in_channel_names_the_invite_and_tells_the_requester_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.channels.discard(INCIDENT)
    await request_job(env)
    await retry_all(env)
    await retry_all(env)
    assert len(lines(caplog, f"invite the bot to {INCIDENT}", logging.ERROR)) == 1
    # Not even an ephemeral reaches a channel the bot is not in: the requester gets a DM.
    told = [str(p.get("text")) for p in env.fake.posts(f"D{ALICE}")]
    assert len(told) == 1
    assert "could not be posted" in told[0]
    assert "/invite @breakglass" in told[0]

    env.fake.invite_bot(INCIDENT)  # someone invited the bot: its next event posts the card
    env.advance(seconds=5)  # the first retry's backoff
    await approve(env, BOB)
    assert status_card(env)["blocks"]
    assert len(lines(caplog, f"invite the bot to {INCIDENT}", logging.ERROR)) == 1


async def test_a_refused_token_is_said_once_loudly(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    await request_job(env)
    await approve(env, BOB)
    good, env.fake.token = env.fake.token, "xoxb-another-token"  # the bot's token was revoked
    await approve(env, CAROL)  # several deliveries, each refused
    await retry_all(env)
    await retry_all(env)
    (loud,) = lines(caplog, TOKEN_LINE, logging.ERROR)
    assert "invalid_auth" in loud
    assert "BREAKGLASS_SLACK_BOT_TOKEN" in loud

    env.fake.token = good  # the operator fixed it: the queue drains
    await retry_all(env, minutes=30)
    far = env.clock.now() + timedelta(days=1)
    assert await env.store.due("slack", far) == []
    assert len(lines(caplog, TOKEN_LINE, logging.ERROR)) == 1
