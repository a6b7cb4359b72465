"""One replica as an OS process of its own, for ``make load`` and ``make chaos``: as an
operator runs ``breakglass serve`` twice, each replica has its own interpreter, event loop and
core share, so a Slack ack on one never queues behind the other's work.

The process holds a whole replica (``bench.fleet.open_replica_on``) on a clock of its own that
the driver moves (``advance``), and optionally its Slack edge on a loopback port. The driver
speaks to it over a pipe: each message ``(call id, operation, arguments)`` is answered by
``(call id, True, result)`` or ``(call id, False, error text)``; calls run concurrently, as
requests on a real replica do. ``(None, "escalation", text)`` is sent the moment the replica
logs an escalation, so a replica killed right after still counts. A replica dies by SIGKILL
from the driver: nothing here cleans up for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time as wall
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from adapters.graph import GraphConfig
from adapters.slack import SlackAdapter, SlackConfig
from bench.fleet import HANG_GUARD_SECONDS, Replica, SharedTime, open_replica_on, quiet
from bench.fleet import role_request as fleet_role_request
from bot.heap import freeze_start_up
from bot.job_commands import chat_ports
from bot.loopback import Served, serve
from engine.job import OPEN
from engine.lifecycle import Approve, Kill
from engine.verify import verify_bundle
from tests.support.engine_sim import trust_for


@dataclass(frozen=True)
class Spec:
    """What the driver hands a new replica process (all of it picklable)."""

    name: str
    url: str  # the PostgreSQL schema's URL
    graph: GraphConfig
    started: datetime  # the shared clock's reading when the process is started
    slack: SlackConfig | None = None


class _Escalations(logging.Handler):
    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        super().__init__(logging.ERROR)
        self.conn, self.lock = conn, lock

    def emit(self, record: logging.LogRecord) -> None:
        if "ESCALATION" in record.getMessage():
            with self.lock:
                self.conn.send((None, "escalation", record.getMessage()[:200]))


class Host:
    """The replica inside the process and the operations the driver may call."""

    def __init__(self, replica: Replica, time: SharedTime) -> None:
        self.replica, self.time = replica, time

    async def _timed(self, work: Any) -> tuple[Any, float]:
        started = wall.perf_counter()
        outcome = await work
        return outcome, (wall.perf_counter() - started) * 1000

    async def start(self, job_id: str, minutes: int, principal: str, role: str) -> Any:
        r = self.replica
        request = fleet_role_request(job_id, r, minutes, principal, role)
        out, ms = await self._timed(r.service.request(request, key=f"req:{job_id}"))
        if not out.ok:
            return {"ok": False, "reason": str(out.reason), "ms": ms}
        return {"ok": True, "plan_hash": out.result["plan_hash"], "ms": ms}

    async def approve(self, job_id: str, who: str, plan_hash: str) -> float:
        approve = Approve(self.replica.actor(who), plan_hash)
        _, ms = await self._timed(self.replica.service.command(job_id, approve))
        return ms

    async def kill(self, job_id: str, who: str) -> float:
        _, ms = await self._timed(
            self.replica.service.command(job_id, Kill(self.replica.actor(who)))
        )
        return ms

    async def advance(self, to: datetime) -> None:
        """Move this replica's clock to the driver's reading (never backwards)."""
        ahead = to - self.time.now()
        if ahead > timedelta(0):
            await self.time.advance(ahead)

    async def tick(self) -> None:
        await self.replica.service.tick()
        await quiet(self.time, self.replica)

    async def quiet(self) -> None:
        await quiet(self.time, self.replica)

    async def check(self, ids: list[str]) -> dict[str, Any]:
        """Terminal jobs, those with a verifying bundle and verified rollback, and why not."""
        service = self.replica.service
        trust = trust_for(service.keys)
        terminal, verified, problems = 0, 0, []
        for job_id in ids:
            job = await service.load(job_id)
            if job.state in OPEN:
                continue
            terminal += 1
            bundle, _ = await service.bundle(job)
            report = verify_bundle(bundle, trust)
            if report.valid and job.rollback_verified is not False:
                verified += 1
                continue
            chain = await service.store.chain(job_id)
            steps = [
                (r.event.get("event_type"), r.envelope["payload"].get("tool_name", "")[-20:])
                for r in chain
                if r.envelope
            ]
            problems.append(f"{job_id} {job.state} {job.end_reason} {report.reasons[:3]} {steps}")
        return {"terminal": terminal, "verified": verified, "problems": problems}


async def _serve_slack(replica: Replica, config: SlackConfig) -> tuple[SlackAdapter, Served]:
    slack = SlackAdapter(config, chat_ports(replica.service))
    app = web.Application()
    slack.mount(app)
    return slack, await serve(app)


def main(conn: Connection, spec: Spec) -> None:
    """The process's entry point (``multiprocessing`` target)."""
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(_main(conn, spec))


async def _main(conn: Connection, spec: Spec) -> None:
    loop = asyncio.get_running_loop()
    sending = threading.Lock()  # the escalation handler may send from any thread
    log = logging.getLogger("breakglass")
    log.addHandler(_Escalations(conn, sending))
    log.setLevel(logging.ERROR)
    time = SharedTime(start=spec.started)
    replica = await open_replica_on(spec.name, spec.url, spec.graph, time)
    edge = await _serve_slack(replica, spec.slack) if spec.slack is not None else None
    host = Host(replica, time)
    freeze_start_up()  # as ``breakglass serve`` does once started (bot.heap)
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    threading.Thread(target=_read, args=(conn, loop, inbox), daemon=True).start()
    conn.send((None, "ready", edge[1].url + "/slack/events" if edge else ""))
    calls: set[asyncio.Task[None]] = set()

    async def answer(call: int, op: str, args: tuple[Any, ...]) -> None:
        try:
            result = await asyncio.wait_for(getattr(host, op)(*args), HANG_GUARD_SECONDS * 3)
            reply: tuple[Any, ...] = (call, True, result)
        except Exception as exc:  # told to the driver, which fails the run
            reply = (call, False, f"{op}: {type(exc).__name__}: {exc}")
        with sending:
            conn.send(reply)

    try:
        while (message := await inbox.get()) is not None:
            call, op, args = message
            if op == "close":
                break
            task = asyncio.ensure_future(answer(call, op, args))
            calls.add(task)
            task.add_done_callback(calls.discard)
    finally:
        for task in calls:
            task.cancel()
        if edge is not None:
            await edge[0].close()
            await edge[1].close()
        await replica.close()
    with sending:
        conn.send((None, "closed", ""))


def _read(conn: Connection, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Any]) -> None:
    """The pipe, read off the event loop; ``None`` when the driver has gone."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = None
        loop.call_soon_threadsafe(inbox.put_nowait, message)
        if message is None:
            return
