"""Chat posts per job are bounded: a job's receipts go out at most once per interval; the
ones that arrive sooner wait and go out together, in order, none lost."""

from __future__ import annotations

from datetime import timedelta

from engine.ports import ChainRecord, ChatEvent
from tests.integration.service.conftest import Env

JOB = {"job_id": "job-loud", "channel": {"platform": "console", "conversation": "c"}}


def receipts(env: Env, seq: int) -> ChatEvent:
    record = ChainRecord("job-loud", seq, {"seq": seq}, None)
    return ChatEvent("receipts", JOB, {}, (record,), env.clock.now)


def posted_seqs(env: Env) -> list[int]:
    return [r.seq for e in env.chat.events if e.kind == "receipts" for r in e.records]


async def test_a_burst_of_receipts_becomes_two_posts(env: Env) -> None:
    for seq in range(224):
        await env.service.chat.publish("job-loud", [receipts(env, seq)])
    await env.settle()
    assert len(env.chat.events) == 2  # the first at once, the other 223 together
    assert posted_seqs(env) == list(range(224))


async def test_a_steady_trickle_is_posted_once_per_interval(env: Env) -> None:
    every = env.service.chat.receipts_every
    start = env.clock.now
    for seq in range(120):
        await env.service.chat.publish("job-loud", [receipts(env, seq)])
        env.clock.advance(seconds=1)
    await env.settle()
    elapsed = env.clock.now - start
    assert len(env.chat.events) <= elapsed / every + 2
    assert posted_seqs(env) == list(range(120))


async def test_other_posts_go_out_after_the_receipts_waiting_before_them(env: Env) -> None:
    await env.service.chat.publish("job-loud", [receipts(env, 0)])
    await env.service.chat.publish("job-loud", [receipts(env, 1)])
    finish = ChatEvent("finish", JOB, {"outcome": "closed"}, (), env.clock.now)
    await env.service.chat.publish("job-loud", [finish])
    await env.settle()
    assert env.chat.kinds() == ["receipts", "receipts", "finish"]
    assert posted_seqs(env) == [0, 1]
    assert env.service.chat.receipts_every == timedelta(seconds=10)
