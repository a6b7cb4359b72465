"""Signed Slack interactions at a steady rate against every live replica, for ``make load``.

Each replica process serves the real Slack adapter (Bolt behind our signature-checking edge)
on a loopback port, talking to one fake Slack Web API in the driver. A sender, in a process
of its own (its signing and HTTP client must not share the replicas' cores), posts
``/breakglass`` slash commands signed exactly as Slack signs them, round-robin over the live
replicas (as a load balancer would; a dead replica leaves the rotation), open-loop: the n-th
request leaves at ``start + n / rate`` whether or not earlier ones were answered, so a slow
ack cannot slow the stream down. The ack time is the HTTP round trip of each request; it is
counted in the phase of the run (``Stream.phase``, named by the driver) it was sent in.

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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from adapters.slack import SlackConfig
from tests.integration.slack.conftest import slack_config
from tests.integration.slack.fake_slack import FakeSlack
from tests.integration.slack.support import BOB, DAVE, INCIDENT, TOKEN, SlackSender

STATUS_EVERY = 200  # a status reads every open job: one a second at 200/s
SLACK_ACK_LIMIT_MS = 3000.0  # Slack's limit for acknowledging an interaction
FIRST_PHASE = "burst"  # what the stream's acks count in until the driver names another phase
MAX_IN_FLIGHT = 5000  # more unanswered requests than this: the run is broken, not slow


@dataclass
class Acks:
    """What the stream measured: each request's ack time, and the ones not acked with 200."""

    ms: list[float] = field(default_factory=list)
    failed: int = 0
    cut: int = 0  # connections broken by their replica's SIGKILL (``make chaos``): not acks
    sent: int = 0
    seconds: float = 0.0
    error: str = ""  # the stream broke off (e.g. too many requests unanswered)

    @property
    def late(self) -> int:
        """Acks slower than Slack waits (3 s): Slack shows its user an error for each."""
        return sum(ms > SLACK_ACK_LIMIT_MS for ms in self.ms)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def merged(phases: Iterable[Acks]) -> Acks:
    """The acks of several phases as one."""
    whole = Acks()
    for p in phases:
        whole.ms += p.ms
        whole.failed += p.failed
        whole.cut += p.cut
        whole.sent += p.sent
        whole.seconds += p.seconds
        whole.error = whole.error or p.error
    return whole


class SlackFront:
    """The fake Slack, and the Slack edge of each live replica (served by the replica's own
    process: ``bench.replica_process``)."""

    def __init__(self, tenant_id: str) -> None:
        self.fake = FakeSlack(TOKEN, {INCIDENT})
        self.tenant_id = tenant_id
        self.edges: dict[str, str] = {}  # replica name -> its edge's URL
        self.on_change: Callable[[], None] | None = None  # the rotation changed

    async def start(self) -> None:
        await self.fake.start()

    def config(self) -> SlackConfig:
        """What a replica's Slack adapter is configured with (this fake as Slack's API)."""
        return slack_config(self.fake, self.tenant_id)

    def attach(self, name: str, url: str) -> None:
        self.edges[name] = url
        self._changed()

    def detach(self, name: str) -> None:
        """Out of the rotation (its process is gone)."""
        if self.edges.pop(name, None) is not None:
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def urls(self) -> list[str]:
        return list(self.edges.values())

    async def close(self) -> None:
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

    def phase(self, name: str) -> None:
        """Requests sent from now on count in ``name`` (the first phase is ``FIRST_PHASE``)."""
        self._tell(("phase", name))

    def _tell(self, word: tuple[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the child broke off: its result is waiting
            self._conn.send(word)

    async def finish(self) -> dict[str, Acks]:
        """Stop sending; every request sent is answered (or failed) before this returns.
        The acks of each phase (a phase named again goes on counting where it was)."""
        self.front.on_change = None
        try:
            self._tell(("stop", None))
            result: dict[str, dict[str, Any]] = await asyncio.to_thread(self._conn.recv)
        finally:
            await asyncio.to_thread(self._process.join, 60)
            if self._process.is_alive():
                self._process.kill()
        return {name: Acks(**acks) for name, acks in result.items()}


def _child(conn: Connection, rate: float, urls: list[str]) -> None:
    conn.send("ready")
    phases = {FIRST_PHASE: Acks()}
    try:
        asyncio.run(_send(conn, rate, urls, phases))
    except Exception as exc:  # reported in the summary: a broken stream fails the run
        phases[FIRST_PHASE].error = f"{type(exc).__name__}: {exc}"
    conn.send({name: asdict(acks) for name, acks in phases.items()})


async def _send(conn: Connection, rate: float, urls: list[str], phases: dict[str, Acks]) -> None:
    pending: set[asyncio.Task[Any]] = set()
    connector = aiohttp.TCPConnector(limit=0)  # open-loop: no client-side queue
    acks = phases[FIRST_PHASE]
    async with aiohttp.ClientSession(connector=connector) as session:
        senders: dict[str, SlackSender] = {}
        trigger_ids = itertools.count(1)
        # The edges whose connection broke, one entry per request, with the phase it was in.
        broken: list[tuple[Acks, str]] = []
        started = phase_started = wall.perf_counter()
        try:
            for n in itertools.count():
                while conn.poll():  # the parent's word: a new rotation, a new phase, or stop
                    word, value = conn.recv()
                    if word == "stop":
                        return
                    if word == "phase":
                        now = wall.perf_counter()
                        acks.seconds += now - phase_started
                        acks, phase_started = phases.setdefault(value, Acks()), now
                    else:
                        urls = value
                if (wait := started + n / rate - wall.perf_counter()) > 0:
                    await asyncio.sleep(wait)  # pacing the generator, not awaiting a result
                if len(pending) > MAX_IN_FLIGHT:
                    raise RuntimeError(f"{len(pending)} Slack requests unanswered")
                url = urls[n % len(urls)]
                # One trigger-id counter for all: equal requests would be refused as replays.
                sender = senders.setdefault(url, SlackSender(session, url, _ids=trigger_ids))
                task = asyncio.ensure_future(_one(sender, n, acks, broken))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            acks.seconds += wall.perf_counter() - phase_started
            await asyncio.gather(*pending)  # every request sent is answered or failed
            # A replica leaves the rotation only when it is killed: what broke on its way
            # there died with it; a broken connection to a live replica is a failure.
            for in_phase, url in broken:
                if url in urls:
                    in_phase.failed += 1
                else:
                    in_phase.cut += 1


async def _one(sender: SlackSender, n: int, acks: Acks, broken: list[tuple[Acks, str]]) -> None:
    text = "status" if n % STATUS_EVERY == 0 else "help"
    body = sender.command_body(BOB if n % 2 else DAVE, text)
    acks.sent += 1
    t0 = wall.perf_counter()
    try:
        answer = await sender.send(body, "application/x-www-form-urlencoded")
    except aiohttp.ClientError:
        broken.append((acks, sender.url))
        return
    acks.ms.append((wall.perf_counter() - t0) * 1000)
    if answer.status != 200:
        acks.failed += 1
