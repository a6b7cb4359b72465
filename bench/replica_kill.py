"""Kill on one replica → refusal on another, over PostgreSQL, on loopback.

    .venv/bin/python -m bench.replica_kill

Two replicas (``bench.fleet``) over one PostgreSQL schema of their own (127.0.0.1:5432, db
``test``) and one simulated tenant. Each round, an agent on replica A calls the gateway in a
loop with its job's token (every allowed call reads the tenant and chains a receipt); once it
is busy, the Kill is issued on replica B. The figure is the wall time from issuing the Kill on
B (its commit included) to the first refused call on A: A hears B's revocation by PostgreSQL
``NOTIFY``, and every gateway call also asks the store. Each round's job is then rolled back
and must end verified, so every round starts from a clean tenant.

``run()`` is what ``make bench`` calls: these figures, plus the chat ack figures the last
``make load`` wrote into ``bench/results.json`` (kept, not measured here: they need the whole
fleet under load for minutes).
"""

from __future__ import annotations

import asyncio
import json
import time as wall
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.graph.simulated import SimulatedTenant
from bench.fleet import (
    HANG_GUARD_SECONDS,
    Replica,
    SharedTime,
    open_replica,
    quiet,
    tick_all,
)
from bench.fleet import approve as approve_job
from engine import catalog
from engine.job import OPEN
from engine.lifecycle import Kill
from tests.integration.store.conftest import pg_listening, pg_schema

ROUNDS = 30
BUSY_CALLS = 3  # allowed calls of the agent before the Kill: it is mid-stream, not idle
ROLLBACK = timedelta(minutes=7)  # the tenant refuses removals in a grant's first 5 minutes
GOAL_MS = 100.0
LIMIT_MS = 1000.0
RESULTS = Path(__file__).resolve().parent / "results.json"
LOAD_FIGURES = (
    "chat_ack_p50_ms",
    "chat_ack_p99_ms",
    "chat_ack_burst_p99_ms",
    "chat_interactions_per_s",
)


async def _round(a: Replica, b: Replica, job_id: str) -> float:
    """One Kill on B while A's agent is busy: milliseconds until A refuses."""
    job = await a.job(job_id)
    token = await a.agent_token(job_id)
    read = dict(job.plan.payload["metadata"]["breakglass"]["verify_action"]["arguments"])
    busy = asyncio.Event()
    refused_at: list[float] = []

    async def agent() -> None:
        allowed = 0
        while True:
            outcome = await a.gateway.call(job_id, token, catalog.READ_ROLE, read)
            if not outcome.allowed:
                refused_at.append(wall.perf_counter())
                return
            allowed += 1
            if allowed >= BUSY_CALLS:
                busy.set()

    calls = asyncio.ensure_future(agent())
    await asyncio.wait_for(busy.wait(), HANG_GUARD_SECONDS)
    issued = wall.perf_counter()
    killed = await b.service.command(job_id, Kill(b.actor("bob")))
    if not killed.ok:
        calls.cancel()
        raise RuntimeError(f"{job_id}: the Kill on B was refused: {killed.reason}")
    await asyncio.wait_for(calls, HANG_GUARD_SECONDS)
    return (refused_at[0] - issued) * 1000


async def measure(url: str, rounds: int = ROUNDS) -> list[float]:
    samples = []
    time = SharedTime()
    async with SimulatedTenant(clock=time.manual, ca_interval=0.02, strict=True) as sim:
        a = await open_replica("a", url, sim, time)
        b = await open_replica("b", url, sim, time)
        try:
            for i in range(rounds):
                job_id = f"job-kill-{i:03d}"
                await approve_job(a, job_id)
                await quiet(time, a, b)
                samples.append(await _round(a, b, job_id))
                await tick_all(time, ROLLBACK, a, b)
                if (await a.job(job_id)).state in OPEN:
                    raise RuntimeError(f"{job_id} did not end after its Kill")
        finally:
            await a.close()
            await b.close()
    return samples


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(samples: list[float]) -> dict[str, Any]:
    def ms(value: float) -> dict[str, Any]:
        return {"value": round(value, 3), "unit": "ms"}

    return {
        "kill_refusal_p50_ms": ms(_p(samples, 0.5)),
        "kill_refusal_p99_ms": ms(_p(samples, 0.99)) | {"goal": GOAL_MS, "limit": LIMIT_MS},
        "kill_refusal_rounds": {"value": len(samples), "unit": "kills"},
    }


def last_load_figures() -> dict[str, Any]:
    """The chat ack figures of the last ``make load`` (bench.load writes them)."""
    try:
        recorded = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in recorded.items() if k in LOAD_FIGURES}


def run() -> dict[str, Any]:
    if (why := pg_listening()) is not None:
        print(f"kill → refusal across replicas: skipped, PostgreSQL unreachable ({why})")
        return last_load_figures()
    with pg_schema("bg_bench_kill") as url:
        samples = asyncio.run(measure(url))
    result = summarise(samples)
    for name, figure in result.items():
        print(f"{name}: {figure['value']} {figure['unit']}")
    return result | last_load_figures()


if __name__ == "__main__":
    run()
