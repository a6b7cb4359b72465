"""Signed Slack interactions at a steady rate against every live replica, for ``make load``.

Each replica gets the real Slack adapter (Bolt behind our signature-checking edge) on a
loopback port, talking to one fake Slack Web API. A sender posts ``/breakglass`` slash
commands signed exactly as Slack signs them, round-robin over the live replicas (as a load
balancer would; a dead replica leaves the rotation), open-loop: the n-th request leaves at
``start + n / rate`` whether or not earlier ones were answered, so a slow ack cannot slow the
stream down. The ack time is the HTTP round trip of each request.

Every request passes the edge (timestamp, HMAC, a replay record written to the database) and
Bolt; most are ``help`` (answered in the ack), every ``STATUS_EVERY``-th is ``status``, which
after its ack reads the open jobs from the database and posts them to Slack.
"""

from __future__ import annotations

import asyncio
import itertools
import time as wall
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from adapters.slack import SlackAdapter
from bench.fleet import Replica
from bot.job_commands import chat_ports
from bot.loopback import Served, serve
from tests.integration.slack.conftest import slack_config
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.support import BOB, DAVE, INCIDENT, TOKEN, SlackSender

STATUS_EVERY = 50
MAX_IN_FLIGHT = 2000  # more unanswered requests than this: the run is broken, not slow


@dataclass
class Edge:
    slack: SlackAdapter
    site: Served


@dataclass
class Acks:
    """What the stream measured: each request's ack time, and the ones not acked with 200."""

    ms: list[float] = field(default_factory=list)
    failed: int = 0
    sent: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class SlackFront:
    """The fake Slack, and one Slack edge per live replica."""

    def __init__(self, tenant_id: str) -> None:
        self.fake = FakeSlack(TOKEN, {INCIDENT})
        self.tenant_id = tenant_id
        self.edges: dict[str, Edge] = {}
        self.gone: list[Edge] = []

    async def start(self) -> None:
        await self.fake.start()

    async def attach(self, replica: Replica) -> None:
        slack = SlackAdapter(slack_config(self.fake, self.tenant_id), chat_ports(replica.service))
        app = web.Application()
        slack.mount(app)
        self.edges[replica.name] = Edge(slack, await serve(app))

    def detach(self, replica: Replica) -> None:
        """Out of the rotation (its process is gone); closed with the rest at the end."""
        edge = self.edges.pop(replica.name, None)
        if edge is not None:
            self.gone.append(edge)

    def urls(self) -> list[str]:
        return [e.site.url + "/slack/events" for e in self.edges.values()]

    async def close(self) -> None:
        for edge in [*self.edges.values(), *self.gone]:
            await edge.slack.close()
            await edge.site.close()
        await self.fake.stop()


async def stream(front: SlackFront, rate: float, stop: asyncio.Event) -> Acks:
    """Send at ``rate`` per second until ``stop`` is set; every answer is awaited."""
    acks = Acks()
    pending: set[asyncio.Task[Any]] = set()
    async with aiohttp.ClientSession() as session:
        senders: dict[str, SlackSender] = {}
        started = wall.perf_counter()
        for n in itertools.count():
            if stop.is_set():
                break
            due = started + n / rate
            if (wait := due - wall.perf_counter()) > 0:  # pacing the generator, not a race
                try:
                    await asyncio.wait_for(stop.wait(), wait)
                    break
                except TimeoutError:
                    pass
            if len(pending) > MAX_IN_FLIGHT:
                raise RuntimeError(f"{len(pending)} Slack requests unanswered")
            urls = front.urls()
            url = urls[n % len(urls)]
            sender = senders.setdefault(url, SlackSender(session, url))
            task = asyncio.ensure_future(_one(sender, n, acks))
            pending.add(task)
            task.add_done_callback(pending.discard)
        acks.seconds = wall.perf_counter() - started
        await asyncio.gather(*pending)
    return acks


async def _one(sender: SlackSender, n: int, acks: Acks) -> None:
    text = "status" if n % STATUS_EVERY == 0 else "help"
    body = sender.command_body(BOB if n % 2 else DAVE, text)
    acks.sent += 1
    t0 = wall.perf_counter()
    try:
        answer = await sender.send(body, "application/x-www-form-urlencoded")
    except aiohttp.ClientError:
        acks.failed += 1
        return
    acks.ms.append((wall.perf_counter() - t0) * 1000)
    if answer.status != 200:
        acks.failed += 1
