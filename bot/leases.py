"""Job leases as a replica sees them: which jobs this replica runs, until when.

Exactly one replica runs a job's timer work, its executor, its rollback and its sweep at a
time. The store decides (compare-and-set on one row per job); this keeps what we were
granted so that keeping a lease costs no write until half of it has run out. A replica
that dies stops renewing, and the next replica to tick takes its jobs over once its leases
expire (``ttl``, seconds)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from engine.errors import StoreError
from engine.ports import LeaseStore

log = logging.getLogger("breakglass.leases")
LEASE_TTL = timedelta(seconds=10)


def default_replica_id() -> str:
    """The host's name: a restarted replica finds its own leases again at once. Replicas
    sharing a host need ids of their own (see docs/operations.md)."""
    return f"replica-{socket.gethostname()}"


class Leases:
    def __init__(
        self,
        store: LeaseStore,
        clock: Callable[[], datetime],
        owner: str | None = None,
        ttl: timedelta = LEASE_TTL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner or default_replica_id()
        self.ttl = ttl
        self._held: dict[str, datetime] = {}  # job id → when our lease runs out

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._held

    def __len__(self) -> int:
        return len(self._held)

    async def take(self, job_id: str) -> bool:
        """Acquire or renew the job's lease; False when another live replica holds it."""
        now = self.clock()
        until = now + self.ttl
        if await self.store.acquire_lease(job_id, self.owner, until, now):
            if job_id not in self._held:
                log.debug("lease on %s taken by %s", job_id, self.owner)
            self._held[job_id] = until
            return True
        if self._held.pop(job_id, None) is not None:
            log.warning("lease on %s lost by %s", job_id, self.owner, extra={"job_id": job_id})
        return False

    async def keep(self, job_id: str) -> bool:
        """True while this replica holds the lease; writes only past its half-life."""
        until = self._held.get(job_id)
        if until is not None and not self._due(until, self.clock()):
            return True
        return await self.take(job_id)

    async def keep_all(self) -> None:
        """Renew every lease we hold that is past its half-life, all in one write (a tick
        renewing a hundred leases one transaction each held the store up: issue 19). A
        lease the write did not find ours is taken again one by one, or reported lost."""
        now = self.clock()
        due = [j for j, until in self._held.items() if self._due(until, now)]
        until = now + self.ttl
        renewed = await self.store.renew_leases(due, self.owner, until)
        for job_id in due:
            if job_id in renewed:
                self._held[job_id] = until
            else:
                await self.take(job_id)

    def _due(self, until: datetime, now: datetime) -> bool:
        """Is a lease that runs out at ``until`` past its half-life (time to renew it)?"""
        return now >= until - self.ttl / 2

    async def release(self, job_id: str) -> None:
        if self._held.pop(job_id, None) is not None:
            await self.store.release_lease(job_id, self.owner)

    async def release_all(self) -> None:
        """On a clean stop: hand every lease back (a store already gone only delays the
        takeover until the leases expire)."""
        try:
            for job_id in list(self._held):
                await self.release(job_id)
        except StoreError as exc:
            log.warning("leases not handed back at stop: %s", exc)

    def forget(self) -> None:
        """A replica stopping without cleanup (tests' "dead replica"): drop what we knew."""
        self._held.clear()
