"""Ports a chat adapter (Slack, Teams, the console) receives instead of the job service.

Each Protocol is what one part of an adapter actually calls, and nothing more: no signing
keys, no whole store, no service. ``bot/`` implements them (``bot.job_commands``) and hands
them over as one :class:`ChatPorts`; adapters depend on this module and the engine only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from engine.job import Actor, Job
from engine.lifecycle import Command, Request
from engine.outcome import Outcome
from engine.ports import ChainRecord, JsonDoc, MessageRefs, Outbox, ReplayGuard

Clock = Callable[[], datetime]


class JobCalls(Protocol):
    """The calls the job service answers itself (``JobCommands`` without the checks)."""

    async def request(self, command: Request, key: str | None = None) -> Outcome: ...

    async def command(self, job_id: str, command: Command, key: str | None = None) -> Outcome: ...

    async def load(self, job_id: str) -> Job:
        """The job as stored; raises ``JobNotFound``."""
        ...

    async def peek(self, job_id: str) -> Job:
        """The job as the service last saw it (may read the store); raises ``JobNotFound``."""
        ...

    async def open_jobs(self) -> list[Job]: ...


class JobCommands(JobCalls, Protocol):
    """Asks the job service to act; every answer is an ``Outcome`` (refusals included)."""

    def check_request(self, command: Request) -> None:
        """Raise ``CommandRefused`` when ``command`` would be refused; stores nothing."""
        ...

    def check_command(self, job: Job, command: Command) -> None:
        """Raise ``CommandRefused`` when ``command`` on ``job`` would be refused; stores
        nothing."""
        ...


class PassedOn:
    """A ``JobCalls`` that passes every call on to ``inner`` unchanged: what a wrapper of the
    service (``ServiceJobs``, ``StepUpJobs``) does with all it does not change."""

    def __init__(self, inner: JobCalls) -> None:
        self._calls = inner

    async def request(self, command: Request, key: str | None = None) -> Outcome:
        return await self._calls.request(command, key)

    async def command(self, job_id: str, command: Command, key: str | None = None) -> Outcome:
        return await self._calls.command(job_id, command, key)

    async def load(self, job_id: str) -> Job:
        return await self._calls.load(job_id)

    async def peek(self, job_id: str) -> Job:
        return await self._calls.peek(job_id)

    async def open_jobs(self) -> list[Job]:
        return await self._calls.open_jobs()


class JobRecords(Protocol):
    """What a job has written: its chain, and its proof bundle (the signed envelope)."""

    async def chain(self, job_id: str) -> list[ChainRecord]: ...

    async def bundle(self, job: Job) -> JsonDoc: ...


class Identities(Protocol):
    """Who a chat identity is in the directory (an unknown person gets no principal)."""

    def actor(self, chat_identity: str, display: str = "", email: str | None = None) -> Actor: ...


class RequestLimits(Protocol):
    """The configured rules a chat form shows: the longest window and who approves."""

    @property
    def max_minutes(self) -> int: ...

    @property
    def approvers(self) -> frozenset[str]: ...


class ChatStore(MessageRefs, Outbox, ReplayGuard, Protocol):
    """The parts of the store a chat adapter touches."""


@dataclass(frozen=True)
class ChatPorts:
    """Everything a chat adapter may use from the running service, each through its port."""

    jobs: JobCommands
    records: JobRecords
    people: Identities
    limits: RequestLimits
    store: ChatStore
    clock: Clock
