"""Job leases: compare-and-set on one row, on SQLite and PostgreSQL; and the housekeeping
queries (counts by state, purge of old idempotency keys)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from datetime import timedelta

import pytest

from adapters.store import SqlStore
from bot.leases import Leases
from tests.integration.store.conftest import T0, new_job
from tests.support.fakes import Clock

TTL = timedelta(seconds=10)


async def test_a_free_lease_is_taken_and_a_held_one_refused(store: SqlStore) -> None:
    assert await store.acquire_lease("job-1", "a", T0 + TTL, T0)
    assert not await store.acquire_lease("job-1", "b", T0 + TTL, T0 + timedelta(seconds=1))
    assert await store.lease_holders(T0) == {"job-1": "a"}


async def test_the_owner_renews_and_an_expired_lease_is_taken_over(store: SqlStore) -> None:
    assert await store.acquire_lease("job-1", "a", T0 + TTL, T0)
    assert await store.acquire_lease("job-1", "a", T0 + 2 * TTL, T0 + TTL / 2)
    assert not await store.acquire_lease("job-1", "b", T0 + 3 * TTL, T0 + TTL)  # renewed
    later = T0 + 2 * TTL
    assert await store.acquire_lease("job-1", "b", later + TTL, later)
    assert await store.lease_holders(later) == {"job-1": "b"}
    assert not await store.acquire_lease("job-1", "a", later + TTL, later)


async def test_leases_are_renewed_together_and_only_the_owners(store: SqlStore) -> None:
    for job_id in ("job-1", "job-2"):
        assert await store.acquire_lease(job_id, "a", T0 + TTL, T0)
    assert await store.acquire_lease("job-3", "b", T0 + TTL, T0)
    later = T0 + TTL / 2
    renewed = await store.renew_leases(["job-1", "job-2", "job-3", "job-none"], "a", later + TTL)
    assert renewed == {"job-1", "job-2"}
    after_first_ttl = T0 + TTL + timedelta(seconds=1)
    assert await store.lease_holders(after_first_ttl) == {"job-1": "a", "job-2": "a"}
    assert not await store.acquire_lease("job-1", "b", later + 2 * TTL, after_first_ttl)
    assert await store.renew_leases([], "a", later + TTL) == set()


async def test_a_replica_keeps_its_leases_and_drops_one_taken_over(store: SqlStore) -> None:
    clock = Clock(T0)
    a, b = Leases(store, clock, "a", TTL), Leases(store, clock, "b", TTL)
    for job_id in ("job-1", "job-2", "job-3"):
        assert await a.take(job_id)
    clock.advance(seconds=3)
    await a.keep_all()  # not past half-life: nothing to renew
    assert await store.lease_holders(T0 + TTL) == {}
    clock.advance(seconds=8)  # all three expired; b takes job-2 over
    assert await b.take("job-2")
    await a.keep_all()
    assert ("job-1" in a, "job-2" in a, "job-3" in a) == (True, False, True)
    holders = {"job-1": a.owner, "job-2": b.owner, "job-3": a.owner}
    assert await store.lease_holders(clock()) == holders
    renewed_at = clock()
    clock.advance(seconds=1)
    await a.keep_all()  # renewed a second ago: no write
    assert await store.lease_holders(renewed_at + TTL + timedelta(seconds=0.5)) == {}


async def test_only_the_owner_releases(store: SqlStore) -> None:
    assert await store.acquire_lease("job-1", "a", T0 + TTL, T0)
    assert not await store.release_lease("job-1", "b")
    assert await store.release_lease("job-1", "a")
    assert await store.lease_holders(T0) == {}
    assert await store.acquire_lease("job-1", "b", T0 + TTL, T0)


async def test_racing_replicas_get_one_lease(url: str) -> None:
    stores = [await SqlStore.open(url) for _ in range(4)]
    try:
        won = await asyncio.gather(
            *(s.acquire_lease("job-1", f"r{i}", T0 + TTL, T0) for i, s in enumerate(stores))
        )
        assert sum(won) == 1
    finally:
        for s in stores:
            await s.close()


async def test_jobs_are_counted_by_state(store: SqlStore) -> None:
    assert await store.count_jobs() == {}
    for n in range(3):
        await store.create_job(new_job(f"job-{n}"))
    assert await store.count_jobs() == {"planned": 3}


async def test_old_idempotency_keys_are_purged(store: SqlStore) -> None:
    await store.claim_key("old", {"ok": True}, T0)
    await store.claim_key("new", {"ok": True}, T0 + timedelta(hours=2))
    assert await store.purge_keys(T0 + timedelta(hours=1)) == 1
    assert await store.idempotent_result("old") is None
    assert await store.idempotent_result("new") == {"ok": True}


def _owner(pid: int, host: str = socket.gethostname(), boot: str = "0badb007") -> str:
    """How another process of replica "r" names itself on its leases."""
    return f"r/{host}/{pid}/{boot}"


def _gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


async def test_two_processes_with_one_replica_id_never_hold_one_job(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Two processes started with the same replica id both counted as a job's holder and ran
    # its rollback twice (a black-box run with replicas): a lease is a process's own now.
    twin = _owner(os.getppid())  # alive: this test's parent process
    assert await store.acquire_lease("job-1", twin, T0 + TTL, T0)
    leases = Leases(store, Clock(T0), "r", TTL)
    await leases.adopt()
    assert not await leases.take("job-1")
    assert "job-1" not in leases
    assert await store.lease_holders(T0) == {"job-1": twin}
    assert f"another process holds leases as replica r ({twin})" in caplog.text


@pytest.mark.parametrize("pid", [_gone_pid(), os.getpid()], ids=["pid gone", "same pid"])
async def test_a_restarted_replica_takes_its_dead_predecessors_leases_at_once(
    store: SqlStore, pid: int
) -> None:
    dead = _owner(pid)  # a crashed process, or this container's previous boot
    for job_id in ("job-1", "job-2"):
        assert await store.acquire_lease(job_id, dead, T0 + TTL, T0)
    assert await store.acquire_lease("job-3", _owner(pid, host="elsewhere"), T0 + TTL, T0)
    leases = Leases(store, Clock(T0), "r", TTL)
    await leases.adopt()
    assert ("job-1" in leases, "job-2" in leases, "job-3" in leases) == (True, True, False)
    holders = await store.lease_holders(T0)
    assert holders == {"job-1": leases.owner, "job-2": leases.owner, "job-3": holders["job-3"]}
