"""Set-ups the benchmarks measure: an active job behind the real gateway and store, and a
bundle with many receipts. Uses the same fixed keys as the tests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from adapters.store import SqlStore, sqlite_url
from bot.gateway_service import ToolGateway
from bot.service import JobService
from engine.cst import TokenKind
from engine.gateway import GatewayView, ToolCall, decide
from engine.identity import Directory
from engine.lifecycle import Approve, Kill, ModelCallRecorded, Request, Rules
from engine.ports import MarkedGrant
from engine.receipts import gateway_receipt_payload
from engine.tools import ToolResult
from engine.verify import Trust
from engine.wpc import ModelAllowance, Policy
from tests.support.engine_sim import ROLE_TARGETS, JobSim, fixed_keys, trust_for

BENCH_MODEL = ModelAllowance("scripted", "runbook")


class InstantTenant:
    """A tool port that answers at once, so the gateway's own cost is what is measured."""

    async def call(self, tool_name: str, arguments: Any) -> ToolResult:
        return ToolResult("success", {"verified": True})

    async def find_marked_grants(self) -> list[MarkedGrant]:
        return []


@dataclass
class ActiveJob:
    store: SqlStore
    service: JobService
    gateway: ToolGateway
    job_id: str
    token: str
    read_call: tuple[str, dict[str, Any]]
    view: GatewayView  # what the gateway knows of the job, for the pure decision alone
    database: Path  # the store's SQLite file

    def decision_ms(self) -> float:
        """One pure decision of the allowed read call: no I/O, no receipt."""
        call = ToolCall(*self.read_call)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        decide(call, self.token, self.view, now)
        return (time.perf_counter() - t0) * 1000

    async def close(self) -> None:
        pending = [t for t in self.service.tasks if not t.done()]
        for task in pending:
            if task.get_name().startswith("chat-flush:"):
                task.cancel()  # receipts paced for chat: a wait of seconds, nothing to measure
        await asyncio.gather(*pending, return_exceptions=True)
        await self.store.close()

    async def measure_kill(self) -> float:
        refused_at: list[float] = []
        stop = asyncio.Event()

        async def agent() -> None:
            while not stop.is_set():
                out = await self.gateway.call(self.job_id, self.token, *self.read_call)
                if not out.allowed:
                    refused_at.append(time.perf_counter())
                    return

        busy = asyncio.ensure_future(agent())
        await asyncio.sleep(0.005)
        t0 = time.perf_counter()
        await self.service.command(self.job_id, Kill(self.service.actor("console:dave")))
        await asyncio.wait_for(busy, 5)
        stop.set()
        return (refused_at[0] - t0) * 1000


async def active_service(home: Path) -> ActiveJob:
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    url = sqlite_url(home)
    store = await SqlStore.open(url)
    directory = Directory(
        by_chat_identity={f"console:{n}": [f"u-{n}"] for n in ("alice", "bob", "carol", "dave")}
    )
    service = JobService(
        store=store,
        keys=fixed_keys(),
        rules=Rules(approvers=frozenset({"u-bob", "u-carol"})),
        tools=InstantTenant(),
        clock=lambda: datetime.now(UTC),
        directory=directory,
    )
    gateway = ToolGateway(service)
    request = Request(
        job_id="job-bench",
        actor=service.actor("console:alice"),
        template="entra-role",
        targets=ROLE_TARGETS,
        minutes=60,
        justification="benchmark",
        ticket="BENCH-1",
    )
    plan = (await service.request(request)).result["plan_hash"]
    for who in ("bob", "carol"):
        await service.command("job-bench", Approve(service.actor(f"console:{who}"), plan))
    job = await service.load("job-bench")
    terms = job.plan.payload["metadata"]["breakglass"]["verify_action"]
    view = GatewayView(
        job.job_id,
        Policy.from_payload(job.plan.payload),
        {service.keys.issuer.did},
        lambda _jti: False,
    )
    return ActiveJob(
        store,
        service,
        gateway,
        "job-bench",
        service.token_for(job, TokenKind.AGENT),
        (terms["tool"], dict(terms["arguments"])),
        view,
        Path(str(make_url(url).database)),
    )


def bundle_with_model_receipts(n: int) -> tuple[dict[str, Any], Trust]:
    """A closed job whose chain carries ``n`` model-call receipts."""
    sim = JobSim()
    sim.rules = replace(sim.rules, model=BENCH_MODEL)  # the WPC must allow the model called
    sim.request()
    sim.approve_both()
    assert sim.job is not None
    scope = sim.job.token(TokenKind.AGENT).claims["token_scope_hash_b64u"]  # type: ignore[union-attr]
    for i in range(n):
        payload = gateway_receipt_payload(
            receipt_id=f"gr_{i:06d}",
            gateway_id="bench",
            provider=BENCH_MODEL.provider,
            model=BENCH_MODEL.name,
            request_body=f"req {i}".encode(),
            response_body=f"resp {i}".encode(),
            tokens_input=10,
            tokens_output=20,
            latency_ms=5,
            at=sim.now,
        )
        sim.do(ModelCallRecorded(payload, scope))
    sim.do(Kill(sim.job.requester))
    sim.run_rollback()
    return sim.bundle(), trust_for(sim.keys)


class CommitFloor:
    """One small INSERT+COMMIT in a table of its own in the SQLite file ``path``, tuned as
    the store tunes its own (WAL, synchronous=FULL, BEGIN IMMEDIATE): the least a durable
    append can cost there."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS floor (seq INTEGER PRIMARY KEY, body TEXT)")

    def sample_ms(self) -> float:
        t0 = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO floor (body) VALUES (?)", ("r" * 200,))
        self.db.execute("COMMIT")
        return (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self.db.close()
