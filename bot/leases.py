"""Job leases as a replica sees them: which jobs this replica runs, until when.

Exactly one replica runs a job's timer work, its executor, its rollback and its sweep at a
time. The store decides (compare-and-set on one row per job); this keeps what we were
granted so that keeping a lease costs no write until half of it has run out. A replica
that dies stops renewing, and the next replica to tick takes its jobs over once its leases
expire (``ttl``, seconds).

A lease is held by one process, not by a replica id: two processes started with the same id
by mistake must not both believe they run a job (a black-box run saw both run one rollback).
The owner is ``<replica id>/<host>/<pid>/<boot>``. A restarted replica takes its dead
predecessor's leases over at once (``adopt``): same id, same host, and a pid that is gone or
is its own (a container restarted under the same pid). Anything else waits for the leases
to expire."""

from __future__ import annotations

import logging
import os
import secrets
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


def process_owner(replica_id: str) -> str:
    """This process's name on the leases it holds (see the module's docstring)."""
    return f"{replica_id}/{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


def _is_dead_predecessor(owner: str, replica_id: str) -> bool:
    """Was ``owner`` a process of ``replica_id`` on this host that is gone now?"""
    _, _, rest = owner.partition(f"{replica_id}/")
    host, _, rest = rest.partition("/")
    pid_text, _, _ = rest.partition("/")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host's process: only its leases' expiry says it is gone
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # this pid, another boot: this process replaced it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


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
        self.replica_id = owner or default_replica_id()
        self.owner = process_owner(self.replica_id)
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

    async def adopt(self) -> None:
        """At start: take over the live leases of this replica's dead predecessors at once.
        Those of another live process with this replica id stay its own (and are said)."""
        now = self.clock()
        owners = set((await self.store.lease_holders(now)).values()) - {self.owner}
        for owner in sorted(o for o in owners if o.startswith(f"{self.replica_id}/")):
            if not _is_dead_predecessor(owner, self.replica_id):
                log.warning(
                    "another process holds leases as replica %s (%s): its jobs stay its own "
                    "until it stops; two processes must not share a replica id",
                    self.replica_id,
                    owner,
                )
                continue
            until = self.clock() + self.ttl
            for job_id in await self.store.reassign_leases(owner, self.owner, until):
                self._held[job_id] = until

    async def keep(self, job_id: str) -> bool:
        """True while this replica holds the lease; writes only past its half-life. Held
        here and the store refuses the renewal (a full disk): still ours, as nobody can
        take it while the store refuses writes (docs/notes/store-full.md)."""
        until = self._held.get(job_id)
        if until is not None and not self._due(until, self.clock()):
            return True
        try:
            return await self.take(job_id)
        except StoreError:
            if job_id in self._held:
                return True
            raise

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
