"""Signed Slack interactions at a steady rate against every live replica, for ``make load``.

Each replica gets the real Slack adapter (Bolt behind our signature-checking edge) on a
loopback port, talking to one fake Slack Web API. A sender, in a process of its own
(its signing and HTTP client must not share the replicas' event loop and core), posts
``/breakglass`` slash commands signed exactly as Slack signs them, round-robin over the live
replicas (as a load balancer would; a dead replica leaves the rotation), open-loop: the n-th
request leaves at ``start + n / rate`` whether or not earlier ones were answered, so a slow
ack cannot slow the stream down. The ack time is the HTTP round trip of each request.

Every request passes the edge (timestamp, HMAC, a replay record written to the database) and
Bolt; most are ``help`` (answered in the ack), every ``STATUS_EVERY``-th is ``status``, which
after its ack reads the open jobs from the database and posts them to Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import time as wall
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
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

STATUS_EVERY = 200  # a status reads every open job: one a second at 200/s
MAX_IN_FLIGHT = 5000  # more unanswered requests than this: the run is broken, not slow


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
    error: str = ""  # the stream broke off (e.g. too many requests unanswered)

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
        self.on_change: Callable[[], None] | None = None  # the rotation changed

    async def start(self) -> None:
        await self.fake.start()

    async def attach(self, replica: Replica) -> None:
        slack = SlackAdapter(slack_config(self.fake, self.tenant_id), chat_ports(replica.service))
        app = web.Application()
        slack.mount(app)
        self.edges[replica.name] = Edge(slack, await serve(app))
        self._changed()

    def detach(self, replica: Replica) -> None:
        """Out of the rotation (its process is gone); closed with the rest at the end."""
        edge = self.edges.pop(replica.name, None)
        if edge is not None:
            self.gone.append(edge)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def urls(self) -> list[str]:
        return [e.site.url + "/slack/events" for e in self.edges.values()]

    async def close(self) -> None:
        for edge in [*self.edges.values(), *self.gone]:
            await edge.slack.close()
            await edge.site.close()
        await self.fake.stop()


class Stream:
    """The sending process: started before the run, told of rotation changes, finished after."""

    def __init__(self, front: SlackFront, rate: float) -> None:
        self.front = front
        spawn = multiprocessing.get_context("spawn")
        self._conn, child = spawn.Pipe()
        self._process = spawn.Process(
            target=_child, args=(child, rate, front.urls()), name="slack-stream", daemon=True
        )

    @classmethod
    async def start(cls, front: SlackFront, rate: float) -> Stream:
        """Once this returns the child sends (it has imported and connected)."""
        stream = cls(front, rate)
        stream._process.start()
        front.on_change = stream.rotate
        ready = await asyncio.wait_for(asyncio.to_thread(stream._conn.recv), 120)
        if ready != "ready":
            raise RuntimeError(f"the Slack stream did not start: {ready}")
        return stream

    def rotate(self) -> None:
        self._tell(("urls", self.front.urls()))

    def _tell(self, word: tuple[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the child broke off: its result is waiting
            self._conn.send(word)

    async def finish(self) -> Acks:
        """Stop sending; every request sent is answered (or failed) before this returns."""
        self.front.on_change = None
        try:
            self._tell(("stop", None))
            result: dict[str, Any] = await asyncio.to_thread(self._conn.recv)
        finally:
            await asyncio.to_thread(self._process.join, 60)
            if self._process.is_alive():
                self._process.kill()
        return Acks(**result)


def _child(conn: Connection, rate: float, urls: list[str]) -> None:
    conn.send("ready")
    acks = Acks()
    try:
        asyncio.run(_send(conn, rate, urls, acks))
    except Exception as exc:  # reported in the summary: a broken stream fails the run
        acks.error = f"{type(exc).__name__}: {exc}"
    conn.send(asdict(acks))


async def _send(conn: Connection, rate: float, urls: list[str], acks: Acks) -> None:
    pending: set[asyncio.Task[Any]] = set()
    connector = aiohttp.TCPConnector(limit=0)  # open-loop: no client-side queue
    async with aiohttp.ClientSession(connector=connector) as session:
        senders: dict[str, SlackSender] = {}
        trigger_ids = itertools.count(1)
        started = wall.perf_counter()
        try:
            for n in itertools.count():
                while conn.poll():  # the parent's word: a new rotation, or stop
                    word, value = conn.recv()
                    if word == "stop":
                        return
                    urls = value
                if (wait := started + n / rate - wall.perf_counter()) > 0:
                    await asyncio.sleep(wait)  # pacing the generator, not awaiting a result
                if len(pending) > MAX_IN_FLIGHT:
                    raise RuntimeError(f"{len(pending)} Slack requests unanswered")
                url = urls[n % len(urls)]
                # One trigger-id counter for all: equal requests would be refused as replays.
                sender = senders.setdefault(url, SlackSender(session, url, _ids=trigger_ids))
                task = asyncio.ensure_future(_one(sender, n, acks))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            acks.seconds = wall.perf_counter() - started
            await asyncio.gather(*pending)  # every request sent is answered or failed


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
