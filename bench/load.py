"""``make load`` and ``make chaos``: many jobs through several replicas over one PostgreSQL
schema and one simulated tenant, on loopback, on a clock the run moves (bounded: no sleeps).

``load``: jobs requested and approved on alternate replicas, some killed on another one.
``chaos``: the same, plus replicas dying at random moments (no cleanup; a fresh replica
with a new id takes their place) and tenant faults (503s, throttling) on the way.
Afterwards every job must be terminal with a verifying bundle and a verified rollback,
nothing privileged may be left, no grant removed twice, no false escalation. One summary
line; exit status 1 on any failure, 2 when PostgreSQL cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import time as wall
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from adapters.graph.simulated import SimulatedTenant
from adapters.graph.simulated.faults import Fault
from bench.fleet import (
    IDS,
    SIMULATED_SEED,
    Replica,
    SharedTime,
    open_replica,
    pg_schema,
    quiet,
    role_request,
)
from engine.job import OPEN
from engine.lifecycle import Approve, Kill
from engine.verify import verify_bundle
from tests.integration.store.conftest import pg_listening
from tests.support.engine_sim import trust_for

PRINCIPALS = ("alice", "dave", "erin")
# The tenant never lets the last holder of Privileged Role Administrator go: a job granting
# it as the only holder ends in an (honest) escalation, so the mix leaves it out.
ROLES = tuple(
    r["id"] for r in SIMULATED_SEED["roles"] if r["displayName"] != "Privileged Role Administrator"
)
# One job per role at a time: a role's rollback is verified against its holders as the job
# found them, so two jobs changing one role's holders at once would fail each other's check.
WAVE = len(ROLES)
STANDING = {(a["principalId"], a["roleDefinitionId"]) for a in SIMULATED_SEED["roleAssignments"]}
WINDOW_MINUTES = 10
STEP = timedelta(seconds=10)
DRAIN = timedelta(minutes=WINDOW_MINUTES + 8)  # window, 5-minute removal rule, margin


@dataclass
class Summary:
    mode: str
    jobs: int
    replicas: int
    terminal: int = 0
    verified: int = 0
    privileged_left: int = 0
    duplicate_removals: int = 0
    escalations: int = 0
    deaths: int = 0
    faults: int = 0
    ack_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        clean = self.privileged_left == self.duplicate_removals == self.escalations == 0
        return clean and self.terminal == self.verified == self.jobs

    def line(self) -> str:
        p50 = statistics.median(self.ack_ms) if self.ack_ms else 0.0
        p99 = sorted(self.ack_ms)[int(0.99 * (len(self.ack_ms) - 1))] if self.ack_ms else 0.0
        return (
            f"{self.mode}: {'OK' if self.ok else 'FAILED'} jobs={self.jobs} "
            f"replicas={self.replicas} terminal={self.terminal} verified={self.verified} "
            f"privileged_left={self.privileged_left} duplicate_removals={self.duplicate_removals} "
            f"escalations={self.escalations} deaths={self.deaths} faults={self.faults} "
            f"ack_p50={p50:.1f}ms ack_p99={p99:.1f}ms in {self.seconds:.1f}s"
        )


class _Escalations(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "ESCALATION" in record.getMessage()


@dataclass
class Fleet:
    url: str
    sim: SimulatedTenant
    time: SharedTime
    live: list[Replica] = field(default_factory=list)
    dead: list[Replica] = field(default_factory=list)
    born: int = 0

    async def add(self) -> Replica:
        self.born += 1
        replica = await open_replica(f"r{self.born}", self.url, self.sim, self.time)
        self.live.append(replica)
        return replica

    async def kill_one(self, rng: random.Random) -> None:
        """A replica dies without cleanup; a fresh one (new id) takes its place."""
        victim = self.live.pop(rng.randrange(len(self.live)))
        victim.die()
        self.dead.append(victim)
        await self.add()

    async def tick(self, total: timedelta) -> None:
        moved = timedelta(0)
        while moved < total:
            await self.time.advance(STEP)
            moved += STEP
            for replica in list(self.live):
                await replica.service.tick()
            await quiet(self.time, *self.live)

    async def close(self) -> None:
        for replica in self.live + self.dead:
            await replica.close()


async def _timed(summary: Summary, work: Any) -> Any:
    started = wall.perf_counter()
    outcome = await work
    summary.ack_ms.append((wall.perf_counter() - started) * 1000)
    return outcome


async def _start_job(fleet: Fleet, summary: Summary, job_id: str, n: int) -> None:
    r = fleet.live[n % len(fleet.live)]
    role = ROLES[n % len(ROLES)]
    principal = PRINCIPALS[(n // len(ROLES)) % len(PRINCIPALS)]
    if (IDS[principal], role) in STANDING:  # already holds it: nothing to grant
        principal = "alice"
    request = role_request(job_id, r, WINDOW_MINUTES, principal, role)
    out = await _timed(summary, r.service.request(request, key=f"req:{job_id}"))
    if not out.ok:
        raise RuntimeError(f"{job_id} refused at request: {out.reason}")
    for who in ("bob", "carol"):
        approver = fleet.live[(n + 1) % len(fleet.live)]
        approve = Approve(approver.actor(who), out.result["plan_hash"])
        await _timed(summary, approver.service.command(job_id, approve))


async def _wave(
    fleet: Fleet, summary: Summary, ids: list[str], rng: random.Random, chaos: bool
) -> None:
    for job_id in ids:
        await _start_job(fleet, summary, job_id, int(job_id.rsplit("-", 1)[1]))
        if chaos and rng.random() < 0.3:
            fleet.sim.add_fault(Fault("unavailable", method="GET", times=1))
            summary.faults += 1
    await quiet(fleet.time, *fleet.live)
    for job_id in ids:
        if rng.random() < 0.3:  # killed from some replica, maybe not the one running it
            killer = rng.choice(fleet.live)
            await _timed(summary, killer.service.command(job_id, Kill(killer.actor("bob"))))
    if chaos and rng.random() < 0.7:
        await fleet.kill_one(rng)
        summary.deaths += 1
    await fleet.tick(DRAIN)


async def _check(fleet: Fleet, summary: Summary, ids: list[str]) -> None:
    judge = fleet.live[0]
    trust = trust_for(judge.service.keys)
    for job_id in ids:
        job = await judge.service.load(job_id)
        if job.state in OPEN:
            continue
        summary.terminal += 1
        bundle, _ = await judge.service.bundle(job)
        report = verify_bundle(bundle, trust)
        if report.valid and job.rollback_verified is not False:
            summary.verified += 1
        else:
            chain = await judge.service.store.chain(job_id)
            steps = [
                (r.event.get("event_type"), r.envelope["payload"].get("tool_name", "")[-20:])
                for r in chain
                if r.envelope
            ]
            summary.problems.append(
                f"{job_id} {job.state} {job.end_reason} {report.reasons[:3]} {steps}"
            )
    summary.privileged_left = len([a for a in fleet.sim.active_grants() if a.origin == "pim"])
    removed = [j for r in fleet.live + fleet.dead for j in r.tools.removed]
    summary.duplicate_removals = len(removed) - len(set(removed))


async def run(url: str, mode: str, jobs: int, replicas: int, seed: int = 1) -> Summary:
    chaos = mode == "chaos"
    summary = Summary(mode, jobs, replicas)
    rng = random.Random(seed)
    escalations = _Escalations()
    service_log = logging.getLogger("breakglass")
    level = service_log.level
    service_log.addHandler(escalations)
    if service_log.getEffectiveLevel() > logging.ERROR:
        service_log.setLevel(logging.ERROR)  # the handler must see ERROR whatever the root says
    started = wall.perf_counter()
    time = SharedTime()
    async with SimulatedTenant(clock=time.manual, ca_interval=0.02, strict=True) as sim:
        fleet = Fleet(url, sim, time)
        try:
            for _ in range(replicas):
                await fleet.add()
            ids = [f"job-{mode}-{i:04d}" for i in range(jobs)]
            for start in range(0, jobs, WAVE):
                await _wave(fleet, summary, ids[start : start + WAVE], rng, chaos)
            await _check(fleet, summary, ids)
        finally:
            await fleet.close()
            service_log.removeHandler(escalations)
            service_log.setLevel(level)
    summary.escalations = escalations.count
    summary.seconds = wall.perf_counter() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("mode", choices=("load", "chaos"))
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    if (why := pg_listening()) is not None:
        print(f"{args.mode}: PostgreSQL unreachable ({why})")
        return 2
    with pg_schema(f"bg_{args.mode}") as url:
        summary = asyncio.run(run(url, args.mode, args.jobs, args.replicas, args.seed))
    for problem in summary.problems[:10]:
        print(f"  {problem}", file=sys.stderr)
    print(summary.line())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
