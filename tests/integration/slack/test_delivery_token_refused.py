"""Slack refuses the bot token itself (revoked, its user or workspace deactivated, an IP
allowlist): all Slack delivery is down. The operator hears it once, at ERROR, with what to
do; the outbox asks Slack once a round whether the token works again (not once per queued
message); the jobs end as planned; and once the token works, everything they missed is
delivered, each post once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from adapters.slack import refs as kinds
from engine.job import ACTIVE, CLOSED
from tests.integration.graph.support import USER_ADMIN, holders
from tests.integration.slack.conftest import Env
from tests.integration.slack.steps import OTHER_GRANT, approve_job, ref_of, request_job
from tests.integration.slack.support import BOB, CAROL, SECRET, TOKEN
from tests.support.receipts import shown_seqs

TOKEN_LINE = "the bot token is invalid or revoked"
FAR = timedelta(days=1)


@pytest.mark.parametrize("code", ["token_revoked", "account_inactive", "invalid_auth"])
async def test_a_dead_token_is_one_error_one_call_a_round_and_nothing_lost(
    env: Env, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    caplog.set_level(logging.INFO, logger="breakglass")
    jobs = [(await request_job(env)).job_id, (await request_job(env, **OTHER_GRANT)).job_id]
    env.fake.refuse_token(code)
    for job_id in jobs:  # approvals reach the bot; nothing it posts reaches Slack
        await approve_job(env, job_id, BOB)
        await approve_job(env, job_id, CAROL)
        assert (await env.service.load(job_id)).state == ACTIVE
    env.advance(minutes=31)
    await env.service.tick()  # both windows end while Slack refuses the token
    await env.settle()
    for job_id in jobs:
        assert (await env.service.load(job_id)).state == CLOSED
    assert holders(env.sim, USER_ADMIN) == set()
    assert {i.job_id for i in await env.store.due("slack", env.clock.now() + FAR)} == set(jobs)

    for _ in range(3):  # outbox rounds while the token is refused
        env.advance(minutes=15)
        calls = len(env.fake.calls)
        assert await env.slack.deliver_queued(env.clock.now()) == 0
        assert len(env.fake.calls) - calls == 1  # one call finds the token still refused
    (loud,) = [r for r in caplog.records if TOKEN_LINE in r.getMessage()]
    assert loud.levelno == logging.ERROR
    assert code in loud.getMessage()
    assert "BREAKGLASS_SLACK_BOT_TOKEN" in loud.getMessage()
    assert not [r for r in caplog.records if "outbox item" in r.getMessage()]
    assert TOKEN not in caplog.text
    assert SECRET not in caplog.text

    env.fake.refuse_token(None)  # the operator fixed it: everything missed goes out, once
    for _ in range(3):
        env.advance(minutes=15)
        await env.slack.deliver_queued(env.clock.now())
    assert await env.store.due("slack", env.clock.now() + FAR) == []
    for job_id in jobs:
        card = await ref_of(env, job_id, kinds.STATUS)
        texts = env.fake.thread(card["channel"], card["ts"])
        assert shown_seqs(texts) == [r.seq for r in await env.store.chain(job_id)]
        assert len([t for t in texts if t.startswith("Break-glass audit summary")]) == 1
        assert env.fake.messages[(card["channel"], card["ts"])]["text"].startswith(
            "Break-glass closed"
        )
    assert len(env.fake.uploads) == 2
    assert len([r for r in caplog.records if TOKEN_LINE in r.getMessage()]) == 1
