"""``make load`` and ``make chaos``: many jobs through several replicas over one PostgreSQL
schema and one simulated tenant, on loopback, on a clock the run moves (bounded in time).

``load``: jobs requested and approved on alternate replicas, some killed on another one, all
open at once (the tenant is seeded with a role per job: two jobs changing one role's holders
at once would fail each other's rollback check), while a stream of signed Slack interactions
hits every replica's Slack edge (``bench.slack_stream``; ``--rate``, 0 for none). Once all
jobs are open, ``load`` lives ``--steady`` seconds (30) in real time, as a deployment does:
every replica ticks every 2 s, the kills come meanwhile; the chat ack goal is measured there.
The rest of the run is a burst: the clock moves as fast as the replicas keep up.
``chaos``: the same without a steady phase, plus replicas SIGKILLed at random moments (a
fresh replica process with a new id takes their place) and tenant faults (503s, throttling).
Each replica is an OS process of its own (``bench.replica_process``), as an operator runs
``breakglass serve`` twice; this process holds the tenant, the fake Slack and the clock.
Afterwards every job must be terminal with a verifying bundle and a verified rollback,
nothing privileged may be left, no grant removed twice, no false escalation, every Slack
request acked with 200 within Slack's 3 s (``ack_late`` counts those later; a request whose
connection a replica's death cut is counted apart, ``ack_cut``: no ack reached Slack, which
shows its user an error). One summary line, with how busy the machine's cores were
(``cpu_busy``); exit status 1 on any failure or when the run outlives ``--deadline``, 2 when
PostgreSQL cannot be reached. ``make load`` also merges its chat ack figures into
``bench/results.json`` (``bench.replica_kill`` keeps them there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time as wall
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from adapters.graph.simulated import SimulatedTenant
from adapters.graph.simulated.faults import Fault
from bench.cpu import busy_share, machine_ticks, percent
from bench.fleet import IDS, SIMULATED_SEED, SharedTime, graph_config
from bench.remote_replica import RemoteReplica
from bench.replica_process import Spec
from bench.slack_stream import FIRST_PHASE, Acks, SlackFront, Stream, merged
from bot.config import Settings
from tests.integration.store.conftest import pg_listening, pg_schema

PRINCIPALS = ("alice", "dave", "erin")
# The tenant never lets the last holder of Privileged Role Administrator go: a job granting
# it as the only holder ends in an (honest) escalation, so the mix leaves it out.
ROLES = tuple(
    r["id"] for r in SIMULATED_SEED["roles"] if r["displayName"] != "Privileged Role Administrator"
)
STANDING = {(a["principalId"], a["roleDefinitionId"]) for a in SIMULATED_SEED["roleAssignments"]}
WINDOW_MINUTES = 10
STEP = timedelta(seconds=10)
DRAIN = timedelta(minutes=WINDOW_MINUTES + 8)  # window, 5-minute removal rule, margin
STARTING = 25  # jobs being requested and approved at once
DEADLINES = {"load": 290.0, "chaos": 360.0}  # seconds: a longer run has failed
# ``make load``'s steady phase: every job open, the clock moving as fast as the wall clock and
# every replica ticking as often as ``breakglass serve`` does; the chat ack goal is measured
# here. The rest of the run moves the clock as fast as the replicas keep up (a burst).
STEADY_SECONDS = 30.0
STEADY = "steady"
TICK = timedelta(seconds=Settings.tick_seconds)
DEATH_PER_STEP = 0.03  # chaos: ~3 more replica deaths over a wave's drain (108 steps)
ACK_GOAL_MS = 100.0
RESULTS = Path(__file__).resolve().parent / "results.json"


def roles_for(jobs: int) -> tuple[str, ...]:
    """The seed's roles, then made-up ones: one job per role at a time (a role's rollback is
    verified against its holders as the job found them)."""
    extra = max(0, jobs - len(ROLES))
    return ROLES + tuple(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"bg-load-role-{i}")) for i in range(extra)
    )


def seed_with(roles: tuple[str, ...]) -> dict[str, Any]:
    known = {r["id"] for r in SIMULATED_SEED["roles"]}
    made_up = [
        {"id": r, "displayName": f"Load test role {i}", "maxMinutes": 60}
        for i, r in enumerate(x for x in roles if x not in known)
    ]
    return SIMULATED_SEED | {"roles": [*SIMULATED_SEED["roles"], *made_up]}


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
    command_ms: list[float] = field(default_factory=list)  # request/approve/kill, in-process
    acks: dict[str, Acks] = field(default_factory=dict)  # the Slack stream's acks, per phase
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False
    cpu_busy: float | None = None  # the machine's cores, busy share over the run (Linux)

    @property
    def all_acks(self) -> Acks:
        return merged(self.acks.values())

    @property
    def ok(self) -> bool:
        clean = self.privileged_left == self.duplicate_removals == self.escalations == 0
        done = self.terminal == self.verified == self.jobs and not self.timed_out
        a = self.all_acks
        acked = a.failed == a.late == 0 and not a.error
        return clean and done and acked

    def line(self) -> str:
        cmd = sorted(self.command_ms)
        cmd_p99 = cmd[int(0.99 * (len(cmd) - 1))] if cmd else 0.0
        a = self.all_acks
        phases = "".join(
            f"{name}_ack_p50={p.percentile(0.5):.1f}ms {name}_ack_p99={p.percentile(0.99):.1f}ms "
            for name, p in self.acks.items()
        )
        return (
            f"{self.mode}: {'OK' if self.ok else 'FAILED'} jobs={self.jobs} "
            f"replicas={self.replicas} terminal={self.terminal} verified={self.verified} "
            f"privileged_left={self.privileged_left} duplicate_removals={self.duplicate_removals} "
            f"escalations={self.escalations} deaths={self.deaths} faults={self.faults} "
            f"interactions={a.sent} ({a.rate:.0f}/s) ack_failed={a.failed} ack_cut={a.cut} "
            f"{phases}ack_max={max(a.ms, default=0.0):.1f}ms ack_late={a.late} "
            f"command_p99={cmd_p99:.1f}ms cpu_busy={percent(self.cpu_busy)}"
            f"{' TIMED OUT' if self.timed_out else ''}"
            f"{f' STREAM BROKE OFF ({a.error})' if a.error else ''} in {self.seconds:.1f}s"
        )

    def figures(self) -> dict[str, Any]:
        """The chat ack figures, as ``bench/results.json`` holds metrics: the goal is measured
        in the steady phase (none without one); the burst's p99 is kept beside it."""
        figures: dict[str, Any] = {}
        if (steady := self.acks.get(STEADY)) is not None and steady.ms:
            figures |= {
                "chat_ack_p50_ms": {"value": round(steady.percentile(0.5), 3), "unit": "ms"},
                "chat_ack_p99_ms": {
                    "value": round(steady.percentile(0.99), 3),
                    "unit": "ms",
                    "goal": ACK_GOAL_MS,
                },
                "chat_interactions_per_s": {"value": round(steady.rate, 1), "unit": "1/s"},
            }
        if (burst := self.acks.get(FIRST_PHASE)) is not None and burst.ms:
            p99 = round(burst.percentile(0.99), 3)
            figures["chat_ack_burst_p99_ms"] = {"value": p99, "unit": "ms"}
        return figures


@dataclass
class Fleet:
    """The replica processes, the tenant and the clock the driver moves for all of them."""

    url: str
    sim: SimulatedTenant
    time: SharedTime  # the tenant's clock; each replica's follows it (``advance``)
    roles: tuple[str, ...]
    front: SlackFront | None = None
    stream: Stream | None = None  # the Slack stream, told when the steady phase begins and ends
    live: list[RemoteReplica] = field(default_factory=list)
    dead: list[RemoteReplica] = field(default_factory=list)
    born: int = 0
    escalations: list[str] = field(default_factory=list)

    async def add(self) -> RemoteReplica:
        self.born += 1
        slack = self.front.config() if self.front is not None else None
        spec = Spec(f"r{self.born}", self.url, graph_config(self.sim), self.time.now(), slack)
        replica = await RemoteReplica.start(spec, self.escalations.append)
        self.live.append(replica)
        if self.front is not None:
            self.front.attach(replica.name, replica.slack_url)
        return replica

    async def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a replica process (no cleanup); a fresh one (new id) takes its place."""
        victim = self.live.pop(rng.randrange(len(self.live)))
        if self.front is not None:
            self.front.detach(victim.name)  # the load balancer sees it gone
        await asyncio.to_thread(victim.kill)
        self.dead.append(victim)
        await self.add()

    async def each(self, op: str, *args: Any) -> None:
        """``op`` on every live replica at once (they are processes: they run in parallel)."""
        await asyncio.gather(*(r.call(op, *args) for r in self.live))

    async def quiet(self) -> None:
        # Twice: a replica quiet before another's last commit may still hear of it (NOTIFY).
        await self.each("quiet")
        await self.each("quiet")

    async def step(self, by: timedelta, between: Callable[[], Awaitable[None]]) -> None:
        """Move time by ``by`` on every replica; ``between`` runs before their ticks."""
        await self.time.advance(by)
        await self.each("advance", self.time.now())
        await between()
        await self.each("tick")

    async def tick(self, total: timedelta, between: Callable[[], Awaitable[None]]) -> None:
        """Move time by ``total`` in steps, each as fast as the replicas keep up."""
        moved = timedelta(0)
        while moved < total:
            await self.step(STEP, between)
            moved += STEP
            await self.quiet()

    async def steady(self, seconds: float, work: list[Callable[[], Awaitable[None]]]) -> None:
        """``seconds`` of real time, as a deployment lives it: every ``TICK`` the clock moves
        by ``TICK`` and every replica ticks (late when the replicas are slower than the wall
        clock, never skipped); ``work`` is spread over the ticks."""
        ticks = max(1, round(seconds / TICK.total_seconds()))
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.stream is not None:
            self.stream.phase(STEADY)
        for i in range(ticks):
            await asyncio.sleep(max(0.0, started + i * TICK.total_seconds() - loop.time()))
            await self.step(TICK, partial(_together, work[i::ticks]))
        await self.quiet()
        if self.stream is not None:
            self.stream.phase(FIRST_PHASE)

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.live + self.dead))
        if self.front is not None:
            await self.front.close()


async def _together(work: list[Callable[[], Awaitable[None]]]) -> None:
    await asyncio.gather(*(w() for w in work))


async def _start_job(fleet: Fleet, summary: Summary, job_id: str, n: int) -> None:
    r = fleet.live[n % len(fleet.live)]
    role = fleet.roles[n % len(fleet.roles)]
    principal = PRINCIPALS[(n // len(fleet.roles)) % len(PRINCIPALS)]
    if (IDS[principal], role) in STANDING:  # already holds it: nothing to grant
        principal = "alice"
    out = await r.start_job(job_id, WINDOW_MINUTES, principal, role)
    summary.command_ms.append(out["ms"])
    if not out["ok"]:
        raise RuntimeError(f"{job_id} refused at request: {out['reason']}")
    for who in ("bob", "carol"):
        approver = fleet.live[(n + 1) % len(fleet.live)]
        summary.command_ms.append(await approver.approve(job_id, who, out["plan_hash"]))


async def _wave(
    fleet: Fleet,
    summary: Summary,
    ids: list[str],
    rng: random.Random,
    chaos: bool,
    steady: float,
) -> None:
    starting = asyncio.Semaphore(STARTING)

    faulty = {job_id for job_id in ids if chaos and rng.random() < 0.3}

    async def start(job_id: str) -> None:
        async with starting:
            if job_id in faulty:  # the tenant fails a read on the way
                fleet.sim.add_fault(Fault("unavailable", method="GET", times=1))
                summary.faults += 1
            await _start_job(fleet, summary, job_id, int(job_id.rsplit("-", 1)[1]))

    await asyncio.gather(*(start(job_id) for job_id in ids))
    await fleet.quiet()
    doomed = [job_id for job_id in ids if rng.random() < 0.3]

    def kill(job_id: str) -> Callable[[], Awaitable[None]]:
        async def press() -> None:  # from some replica, maybe not the one running the job
            killer = rng.choice(fleet.live)
            summary.command_ms.append(await killer.kill_job(job_id, "bob"))

        return press

    if steady > 0:  # the jobs live a while in real time; the kills come meanwhile
        await fleet.steady(steady, [kill(job_id) for job_id in doomed])
    else:
        for job_id in doomed:
            await kill(job_id)()

    async def die(chance: float) -> None:
        if chaos and rng.random() < chance:
            await fleet.kill_one(rng)
            summary.deaths += 1

    await die(0.7)
    await fleet.tick(DRAIN, lambda: die(DEATH_PER_STEP))  # and at random moments after


def removals_per_grant(sim: SimulatedTenant) -> Counter[tuple[str, str]]:
    """Removals the tenant carried out, per (principal, role): counted by the tenant, so a
    replica killed right after its removal still counts."""
    return Counter(
        (r["principalId"], r["roleDefinitionId"])
        for r in sim.directory.requests
        if r["action"] == "adminRemove" and r["status"] == "Revoked"
    )


async def _check(fleet: Fleet, summary: Summary, ids: list[str]) -> None:
    found = await fleet.live[0].call("check", ids)
    summary.terminal, summary.verified = found["terminal"], found["verified"]
    summary.problems.extend(found["problems"])
    summary.privileged_left = len([a for a in fleet.sim.active_grants() if a.origin == "pim"])
    summary.duplicate_removals = sum(n - 1 for n in removals_per_grant(fleet.sim).values())


async def run(
    url: str,
    mode: str,
    jobs: int,
    replicas: int,
    seed: int = 1,
    rate: float = 0.0,
    steady: float = 0.0,
) -> Summary:
    """The whole run; ``rate`` Slack interactions per second meanwhile (0: none), and a
    steady phase of ``steady`` real seconds once the jobs are open (0: none)."""
    chaos = mode == "chaos"
    summary = Summary(mode, jobs, replicas)
    rng = random.Random(seed)
    started, ticks = wall.perf_counter(), machine_ticks()
    time = SharedTime()
    roles = roles_for(jobs)
    seed_doc = seed_with(roles)
    async with SimulatedTenant(seed_doc, clock=time.manual, ca_interval=0.02, strict=True) as sim:
        fleet = Fleet(url, sim, time, roles)
        sender: Stream | None = None
        try:
            if rate > 0:
                fleet.front = SlackFront(sim.tenant_id)
                await fleet.front.start()
            for _ in range(replicas):
                await fleet.add()
            if fleet.front is not None:
                sender = fleet.stream = await Stream.start(fleet.front, rate)
            ids = [f"job-{mode}-{i:04d}" for i in range(jobs)]
            for start in range(0, jobs, len(roles)):
                wave = ids[start : start + len(roles)]
                await _wave(fleet, summary, wave, rng, chaos, steady)
            if sender is not None:
                summary.acks, sender = await sender.finish(), None
                fleet.stream = None
            await _check(fleet, summary, ids)
        finally:
            if sender is not None:  # the run broke off: the stream's own end is secondary
                await asyncio.gather(sender.finish(), return_exceptions=True)
            await fleet.close()
        summary.escalations = len(fleet.escalations)
    summary.seconds = wall.perf_counter() - started
    # Whether the machine's cores were the limit: the ack tail follows them (docs/operations.md).
    summary.cpu_busy = busy_share(ticks, machine_ticks())
    return summary


async def bounded(url: str, args: argparse.Namespace) -> Summary:
    """``run`` within ``--deadline`` seconds: a run that outlives it has failed."""
    work = run(url, args.mode, args.jobs, args.replicas, args.seed, args.rate, args.steady)
    try:
        return await asyncio.wait_for(work, args.deadline)
    except TimeoutError:
        summary = Summary(args.mode, args.jobs, args.replicas, timed_out=True)
        summary.seconds = args.deadline
        return summary


def merge_figures(figures: dict[str, Any]) -> None:
    try:
        recorded = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        recorded = {}
    RESULTS.write_text(json.dumps(recorded | figures, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("mode", choices=("load", "chaos"))
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="Slack interactions per s")
    parser.add_argument("--deadline", type=float, help="seconds (load 290, chaos 360)")
    parser.add_argument(
        "--steady",
        type=float,
        help=f"real seconds with every job open (load {STEADY_SECONDS:.0f}, chaos 0)",
    )
    args = parser.parse_args(argv)
    if args.steady is None:
        args.steady = STEADY_SECONDS if args.mode == "load" else 0.0
    if args.deadline is None:
        args.deadline = DEADLINES[args.mode]
    logging.basicConfig(level=logging.CRITICAL)
    if (why := pg_listening()) is not None:
        print(f"{args.mode}: PostgreSQL unreachable ({why})")
        return 2
    with pg_schema(f"bg_{args.mode}") as url:
        summary = asyncio.run(bounded(url, args))
    for problem in summary.problems[:10]:
        print(f"  {problem}", file=sys.stderr)
    print(summary.line())
    if args.mode == "load" and summary.acks:
        merge_figures(summary.figures())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
