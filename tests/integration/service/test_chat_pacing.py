"""Chat posts per job are bounded: a job's receipts go out at most once per interval; the
ones that arrive sooner wait and go out together, in order, none lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from engine.job import CLOSED, KILLED
from engine.lifecycle import Kill
from engine.ports import ChainRecord, ChatEvent
from tests.integration.service.conftest import Env
from tests.integration.service.test_jobs import approved, request

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


async def test_an_ended_job_is_forgotten_once_its_waiting_receipts_went_out(env: Env) -> None:
    for seq in range(3):  # the 2nd and 3rd wait for a flush
        await env.service.chat.publish("job-loud", [receipts(env, seq)])
    ended = {**JOB, "state": "closed"}
    finish = ChatEvent("finish", ended, {"outcome": "closed"}, (), env.clock.now)
    await env.service.chat.publish("job-loud", [finish])
    await env.settle()
    assert env.chat.kinds() == ["receipts", "receipts", "finish"]
    assert posted_seqs(env) == [0, 1, 2]
    assert env.service.chat.jobs_held() == set()


async def test_the_pacer_holds_nothing_for_jobs_that_ended(env: Env) -> None:
    s = env.service
    ended = [f"job-e{n}" for n in range(4)]
    for n, job_id in enumerate(ended):  # one after the other: they ask for the same grant
        await approved(env, job_id)
        assert s.chat.jobs_held() == {job_id}
        if n % 2:
            assert (await s.command(job_id, Kill(s.actor("console:bob")))).ok
        else:
            env.clock.advance(minutes=31)  # its window ends
            await s.tick()
        await env.settle()
        assert s.chat.jobs_held() == set()
    out = await s.request(request("job-open", actor=s.actor("console:alice")), key="req:open")
    assert out.ok
    await env.settle()
    assert s.chat.jobs_held() == {"job-open"}  # an open job keeps its place
    assert {(await s.load(job_id)).state for job_id in ended} == {KILLED, CLOSED}
    finished = [e.job["job_id"] for e in env.chat.events if e.kind == "finish"]
    assert sorted(finished) == ended  # each told its end before it was forgotten


async def test_receipts_inside_the_interval_are_held_without_a_task_of_their_own(
    env: Env,
) -> None:
    # A busy agent's calls each end in a command: when all that telling people would do is
    # hold receipts back, it is done at once, in order with what waits already.
    chat = env.service.chat
    assert not chat.hold_now("job-loud", [receipts(env, 0)])  # nothing posted yet: publish
    await chat.publish("job-loud", [receipts(env, 0)])
    assert chat.hold_now("job-loud", [receipts(env, 1)])
    assert chat.hold_now("job-loud", [receipts(env, 2)])
    finish = ChatEvent("finish", JOB, {"outcome": "closed"}, (), env.clock.now)
    assert not chat.hold_now("job-loud", [finish])  # a post is published, never held
    env.clock.advance(seconds=10)
    assert not chat.hold_now("job-loud", [receipts(env, 3)])  # the interval is over
    await chat.publish("job-loud", [receipts(env, 3)])
    await env.settle()
    assert posted_seqs(env) == [0, 1, 2, 3]


class GatedChat:
    """Takes posts only while ``gate`` is open."""

    platform = "console"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.kinds: list[str] = []

    async def deliver(self, event: ChatEvent) -> None:
        await self.gate.wait()
        self.kinds.append(event.kind)


async def test_receipts_wait_behind_a_post_still_going_out(env: Env) -> None:
    chat, gated = env.service.chat, GatedChat()
    env.service.notifier.register(gated)
    gated.gate.set()
    await chat.publish("job-loud", [receipts(env, 0)])
    gated.gate.clear()
    notice = ChatEvent("announce", JOB, {}, (), env.clock.now)
    env.service.tasks.spawn(chat.publish("job-loud", [notice]), "chat:job-loud")
    await asyncio.sleep(0)  # the notice holds the job's turn, waiting for the chat
    assert not chat.hold_now("job-loud", [receipts(env, 1)])  # so receipts queue behind it
    env.service.tasks.spawn(chat.publish("job-loud", [receipts(env, 1)]), "chat:job-loud")
    gated.gate.set()
    await env.settle()
    assert gated.kinds == ["receipts", "announce", "receipts"]
