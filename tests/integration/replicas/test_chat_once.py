"""Two replicas, one job, one channel: every message reaches the chat once. Both replicas
tick the job and take commands for it, and both drain the outbox of what the chat missed;
no post is made twice and none is lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest

from adapters.graph.simulated import SimulatedTenant
from adapters.slack.outbox import LEASE, drain
from bench.fleet import Replica, SharedTime, quiet, role_request, tick_all
from bot.job_commands import chat_ports
from engine.job import CLOSED, KILLED
from engine.lifecycle import Approve, Kill
from tests.integration.replicas.test_replicas import two_replicas
from tests.support.fakes import RecordingChat

pytestmark = [pytest.mark.postgres]

CHANNEL = {"platform": "slack", "conversation": "C-INCIDENT"}


async def requested_and_approved(a: Replica, b: Replica, job_id: str) -> None:
    """Requested on A, approved once on each replica (the activation is B's)."""
    out = await a.service.request(replace(role_request(job_id, a), channel=CHANNEL))
    assert out.ok, out
    plan = out.result["plan_hash"]
    assert (await a.service.command(job_id, Approve(a.actor("bob"), plan))).ok
    assert (await b.service.command(job_id, Approve(b.actor("carol"), plan))).ok


def posted_seqs(*chats: RecordingChat) -> Counter[int]:
    return Counter(r.seq for chat in chats for e in chat.events for r in e.records)


def posted_kinds(*chats: RecordingChat) -> Counter[str]:
    return Counter(e.kind for chat in chats for e in chat.events)


@dataclass
class Pair:
    a: Replica
    b: Replica
    chats: list[RecordingChat]  # each replica's own Slack, recording what it posted


@pytest.fixture
async def pair(
    pg_schema_url: str, tenant: SimulatedTenant, time: SharedTime
) -> AsyncIterator[Pair]:
    async with two_replicas(pg_schema_url, tenant, time) as (a, b):
        chats = [RecordingChat(platform="slack"), RecordingChat(platform="slack")]
        a.service.notifier.register(chats[0])
        b.service.notifier.register(chats[1])
        yield Pair(a, b, chats)


async def test_a_job_both_replicas_tick_is_posted_once(pair: Pair, time: SharedTime) -> None:
    a, b, chats = pair.a, pair.b, pair.chats
    await requested_and_approved(a, b, "job-c1")
    await quiet(time, a, b)
    await tick_all(time, timedelta(minutes=40), a, b)  # window ends, rollback, closed
    job = await a.job("job-c1")
    assert job.state == CLOSED
    chain = await a.store.chain("job-c1")
    seqs = posted_seqs(*chats)
    assert [s for s, n in seqs.items() if n > 1] == []  # no record posted twice
    assert sorted(seqs) == [r.seq for r in chain]  # and none left out
    kinds = posted_kinds(*chats)
    assert (kinds["ask_approvers"], kinds["finish"]) == (1, 1)
    # Both replicas posted for the job; neither keeps anything for it once it has ended,
    # including the one that never saw the end (it learns it from its next tick).
    assert a.service.chat.jobs_held() == b.service.chat.jobs_held() == set()


async def test_the_outbox_both_replicas_drain_is_delivered_once(
    pair: Pair, time: SharedTime
) -> None:
    a, b, chats = pair.a, pair.b, pair.chats
    for chat in chats:
        chat.down = True  # every post of both replicas waits in the outbox
    await requested_and_approved(a, b, "job-c2")
    await quiet(time, a, b)
    assert (await b.service.command("job-c2", Kill(b.actor("bob")))).ok
    await tick_all(time, timedelta(minutes=7), a, b)  # killed, rolled back
    assert (await a.job("job-c2")).state == KILLED
    assert posted_kinds(*chats) == Counter()
    queued = await a.store.due("slack", time.now())
    assert len(queued) > 3
    for chat in chats:
        chat.down = False
    now = time.now()
    sent = await asyncio.gather(
        drain(chat_ports(a.service), chats[0], now),
        drain(chat_ports(b.service), chats[1], now),
    )
    assert sum(sent) == len(queued)
    # Every queued item was delivered once, by one replica; later rounds find none.
    assert sum(len(chat.events) for chat in chats) == len(queued)
    later = now + 2 * LEASE
    for replica, chat in zip((a, b), chats, strict=True):
        assert await drain(chat_ports(replica.service), chat, later) == 0
    assert await a.store.due("slack", later) == []
    assert posted_kinds(*chats)["finish"] == 1
    seqs = posted_seqs(*chats)
    assert [s for s, n in seqs.items() if n > 1] == []
