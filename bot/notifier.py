"""Telling people: chat events go to the job's platform, in order, at a bounded rate.

A job's new chain records ("receipts") are posted at most once per ``receipts_every`` per
job; records that arrive sooner wait and go out together in one event, so a job that
misbehaves cannot flood its thread. Every other kind goes out at once (after any receipts
still waiting, so the thread reads in order)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.tasks import TaskSet
from engine import lifecycle
from engine.errors import ChatError, describe
from engine.job import RESOLVED
from engine.ports import ChatEvent, ChatPort, Store

log = logging.getLogger("breakglass.service")
RECEIPTS = "receipts"
RECEIPTS_EVERY = timedelta(seconds=10)


class Notifier:
    """Fans chat events out to the job's platform; failures wait in the outbox."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.platforms: dict[str, ChatPort] = {}

    def register(self, port: ChatPort) -> None:
        self.platforms[port.platform] = port

    async def publish(self, event: ChatEvent) -> None:
        platform = _platform(event)
        port = self.platforms.get(platform)
        if port is None:
            return
        try:
            await port.deliver(event)
        except asyncio.CancelledError:  # shutdown: told beside the job, so keep it for later
            await self.queue(event)
            raise
        except Exception as exc:  # any delivery failure: keep the event, never block the job
            # A platform's refusal is expected: one line (its message names method and error).
            # Only an exception of an unexpected type is worth its traceback.
            expected = isinstance(exc, ChatError)
            log.warning(
                "chat delivery to %s failed for job %s (%s: %s); queued",
                platform,
                event.job.get("job_id"),
                event.kind,
                describe(exc) if expected else type(exc).__name__,
                exc_info=not expected,
            )
            await self.queue(event)

    async def queue(self, event: ChatEvent) -> None:
        """Keep ``event`` in the outbox of its platform, for the next delivery round."""
        platform = _platform(event)
        if platform in self.platforms:
            await self.store.enqueue(
                platform, str(event.job["job_id"]), _outbox_payload(event), self.clock()
            )


def _platform(event: ChatEvent) -> str:
    return str(event.job.get("channel", {}).get("platform", "console"))


def _outbox_payload(event: ChatEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "detail": dict(event.detail),
        "seqs": [r.seq for r in event.records],
        "at": event.now.isoformat(),
    }


@dataclass
class _Held:
    """One job's place in the chat: its lock (posts in order), the receipts waiting for their
    turn, when the last post went out, and whether the job has ended."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # publishers and flushes holding or waiting for the lock
    last_post: datetime | None = None
    waiting: list[ChatEvent] = field(default_factory=list)
    flush: asyncio.Task[None] | None = None
    resolved: bool = False

    def idle(self) -> bool:
        return self.users == 0 and not self.waiting and (self.flush is None or self.flush.done())


@dataclass(eq=False, repr=False)  # compared and shown by identity, as any service object
class PacedChat:
    """Publishes a job's events in order; "receipts" at most once per interval per job.

    A job's state here is dropped once it has ended and its last post has gone out, so a
    replica that runs for months holds nothing for the jobs it finished."""

    notifier: Notifier
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]
    tasks: TaskSet
    receipts_every: timedelta = RECEIPTS_EVERY
    _held: dict[str, _Held] = field(default_factory=dict, init=False)

    def jobs_held(self) -> set[str]:
        """The jobs this pacer keeps state for (open jobs, or ended with a post to go)."""
        return set(self._held)

    def forget_ended(self, open_jobs: Collection[str]) -> None:
        """Drop what is held for jobs no longer open and with nothing to send: jobs another
        replica ended, whose end this one never published."""
        for job_id in [j for j, held in self._held.items() if j not in open_jobs]:
            if self._held[job_id].idle():
                del self._held[job_id]

    @asynccontextmanager
    async def _turn(self, job_id: str) -> AsyncIterator[_Held]:
        held = self._held.setdefault(job_id, _Held())
        held.users += 1
        try:
            async with held.lock:
                yield held
        finally:
            held.users -= 1
            if held.resolved and held.idle() and self._held.get(job_id) is held:
                del self._held[job_id]  # ended, and its last post delivered (or queued)

    async def publish(self, job_id: str, events: list[ChatEvent]) -> None:
        if not events:
            return
        handed = 0  # events given to the notifier, which queues its own on cancellation
        try:
            async with self._turn(job_id) as held:  # keeps posts in order
                for event in events:
                    handed += 1
                    held.resolved = held.resolved or event.job.get("state") in RESOLVED
                    if event.kind == RECEIPTS:
                        await self._receipts(job_id, held, event)
                        continue
                    if event.kind != lifecycle.UPDATE_CARDS:  # a post: what waited goes first
                        await self._send_waiting(held)
                    await self.notifier.publish(event)
        except asyncio.CancelledError:  # shutdown: what was not handed over waits in the outbox
            for event in events[handed:]:
                await self.notifier.queue(event)
            raise

    def hold_now(self, job_id: str, events: list[ChatEvent]) -> bool:
        """Hold receipts back at once, without a task of their own, when that is all that
        publishing them would do: nothing of the job's is posting or waiting to post, and
        its interval is not over (a busy agent's tool calls land here). False: publish."""
        held = self._held.get(job_id)
        if held is None or held.users or self._due(held):
            return False
        if any(e.kind != RECEIPTS for e in events):
            return False
        for event in events:
            held.resolved = held.resolved or event.job.get("state") in RESOLVED
            self._hold(job_id, held, event)
        return True

    def _due(self, held: _Held) -> bool:
        return held.last_post is None or self.clock() - held.last_post >= self.receipts_every

    async def _receipts(self, job_id: str, held: _Held, event: ChatEvent) -> None:
        if self._due(held):
            held.waiting.append(event)
            await self._send_waiting(held)
            return
        self._hold(job_id, held, event)

    def _hold(self, job_id: str, held: _Held, event: ChatEvent) -> None:
        """Keep ``event`` until the job's interval is over; one flush per job sends it."""
        assert held.last_post is not None
        held.waiting.append(event)
        if held.flush is None or held.flush.done():
            due = (held.last_post + self.receipts_every - self.clock()).total_seconds()
            held.flush = self.tasks.spawn(self._flush_later(job_id, due), f"chat-flush:{job_id}")

    async def _flush_later(self, job_id: str, seconds: float) -> None:
        await self.sleep(max(seconds, 0.0))
        if job_id not in self._held:
            return
        async with self._turn(job_id) as held:
            held.flush = None
            await self._send_waiting(held)

    async def _send_waiting(self, held: _Held) -> None:
        if not held.waiting:
            return
        merged = _merge(held.waiting)
        held.waiting = []
        held.last_post = self.clock()
        await self.notifier.publish(merged)


def _merge(events: list[ChatEvent]) -> ChatEvent:
    """One receipts event: every record in order, shown against the newest job document."""
    if len(events) == 1:
        return events[0]
    records = tuple(r for e in events for r in e.records)
    last = events[-1]
    return ChatEvent(RECEIPTS, last.job, {}, records, last.now)
