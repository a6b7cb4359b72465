"""What every tool implementation gets, and the two patterns they share.

``poll``: read until a condition holds, a bounded number of times (Graph replicates writes
with a delay, so a read right after a write may not see it yet).

``write_once``: send a non-idempotent write; when its answer is lost, read back first and
resend only when the read-back shows that the write did not take effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from adapters.bounded import Bounded
from adapters.graph.client import GraphClient
from adapters.graph.config import RetryPolicy
from adapters.graph.failures import ResponseLost
from engine.ports import JsonDoc, MarkedGrant, SnapshotStore

T = TypeVar("T")
ORIGINALS_KEPT = 1024  # CA snapshots kept in memory (a few KB each)


class KeyedLocks:
    """One lock per key, made on first use: a read-modify-write of one shared object (a
    Conditional Access policy's ``users`` block) must not interleave with another, or the
    later write, computed from the earlier read, undoes the other's change."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())


@dataclass(frozen=True)
class ToolContext:
    client: GraphClient
    tenant_id: str
    snapshots: SnapshotStore
    now: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]]
    deployment: str = ""  # marks what we create (see arguments.job_marker)
    exclusive: KeyedLocks = field(default_factory=KeyedLocks)  # one writer per policy
    # CA claims voided here whose void marker the store refused (adapters.graph.ca_claims)
    voided: set[str] = field(default_factory=set)
    # CA snapshots saved or read here (write-once, so never stale): a restore while the
    # store does not answer still knows whether the exclusion was ours (adapters.graph.ca)
    originals: Bounded[str, JsonDoc] = field(default_factory=lambda: Bounded(ORIGINALS_KEPT))

    def marked_grant(
        self,
        job_id: str,
        rollback_tool: str,
        targets: dict[str, str],
        description: str,
        deployment: str | None = None,
    ) -> MarkedGrant:
        """A grant of job ``job_id`` that ``rollback_tool`` undoes with these target arguments
        (``deployment``: the one its marker names, None when it names none)."""
        arguments = {"tenant_id": self.tenant_id, **targets, "job_id": job_id}
        return MarkedGrant(job_id, rollback_tool, arguments, description, deployment)

    @property
    def retry(self) -> RetryPolicy:
        return self.client.config.retry

    async def poll(
        self, read: Callable[[], Awaitable[T]], done: Callable[[T], bool]
    ) -> tuple[T, int]:
        """Read until ``done`` holds or the read-back bound is reached: (last value, reads)."""
        reads = 0
        while True:
            value = await read()
            reads += 1
            if done(value) or reads >= self.retry.readback_attempts:
                return value, reads
            await self.sleep(self.retry.readback_interval)

    async def write_once(
        self, send: Callable[[], Awaitable[T]], read_back: Callable[[], Awaitable[T | None]]
    ) -> tuple[T, bool]:
        """(result, recovered): ``recovered`` when the result came from a read-back."""
        lost: ResponseLost | None = None
        for _ in range(self.retry.write_attempts):
            try:
                return await send(), False
            except ResponseLost as exc:
                lost = exc
            found = await read_back()
            if found is not None:
                return found, True
        assert lost is not None
        raise lost
