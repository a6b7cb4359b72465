"""The driver's side of a replica process (``bench.replica_process``): start it, call its
operations, SIGKILL it.

Processes come from a fork server that has imported the replica's code once, so a
replacement replica in ``make chaos`` starts in a fraction of a second rather than paying
for a fresh interpreter's imports.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.replica_process import Spec, main

START_GUARD_SECONDS = 120.0  # only against a hung start, never a timing assumption
CLOSE_GUARD_SECONDS = 30.0

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["bench.replica_process"])


class ReplicaDied(RuntimeError):
    """The process went away while a call was waiting for it."""


class RemoteReplica:
    """One replica process and the calls waiting for its answers."""

    def __init__(self, spec: Spec, on_escalation: Callable[[str], None]) -> None:
        self.name = spec.name
        self.slack_url = ""  # its Slack edge, once started (empty without one)
        self._conn, child = _context.Pipe()
        self._process = _context.Process(
            target=main, args=(child, spec), name=f"replica-{spec.name}", daemon=True
        )
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[str] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._on_escalation = on_escalation
        self._process.start()
        child.close()
        threading.Thread(target=self._read, name=f"pipe-{spec.name}", daemon=True).start()

    @classmethod
    async def start(cls, spec: Spec, on_escalation: Callable[[str], None]) -> RemoteReplica:
        """Once this returns the replica listens (store, tenant link and Slack edge up)."""
        replica = cls(spec, on_escalation)
        try:
            replica.slack_url = await asyncio.wait_for(replica._ready, START_GUARD_SECONDS)
        except BaseException:
            replica.kill()
            raise
        return replica

    async def call(self, op: str, *args: Any) -> Any:
        call = next(self._ids)
        answer = self._waiting[call] = self._loop.create_future()
        self._conn.send((call, op, args))
        return await answer

    async def start_job(self, job_id: str, minutes: int, principal: str, role: str) -> Any:
        return await self.call("start", job_id, minutes, principal, role)

    async def approve(self, job_id: str, who: str, plan_hash: str) -> float:
        ms: float = await self.call("approve", job_id, who, plan_hash)
        return ms

    async def kill_job(self, job_id: str, who: str) -> float:
        ms: float = await self.call("kill", job_id, who)
        return ms

    async def advance(self, to: datetime) -> None:
        await self.call("advance", to)

    def kill(self) -> None:
        """SIGKILL: the process ends wherever it is, as a crashed host's would."""
        if self._process.pid is not None and self._process.exitcode is None:
            os.kill(self._process.pid, signal.SIGKILL)
        self._process.join(CLOSE_GUARD_SECONDS)

    async def close(self) -> None:
        """Let it close its store, tenant link and edge; killed if it does not."""
        if self._process.exitcode is None and not self._closed.done():
            try:
                self._conn.send((0, "close", ()))
                await asyncio.wait_for(asyncio.shield(self._closed), CLOSE_GUARD_SECONDS)
            except (OSError, TimeoutError):
                pass
        await asyncio.to_thread(self._process.join, CLOSE_GUARD_SECONDS)
        if self._process.exitcode is None:
            self.kill()
        self._conn.close()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                message = None
            try:
                self._loop.call_soon_threadsafe(self._deliver, message)
            except RuntimeError:  # the driver's loop has ended: nobody is waiting
                return
            if message is None:
                return

    def _deliver(self, message: tuple[Any, Any, Any] | None) -> None:
        if message is None:
            self._gone()
            return
        call, ok, value = message
        if call is None:
            if ok == "escalation":
                self._on_escalation(value)
            elif ok == "ready" and not self._ready.done():
                self._ready.set_result(value)
            elif ok == "closed" and not self._closed.done():
                self._closed.set_result(None)
            return
        answer = self._waiting.pop(call, None)
        if answer is None or answer.done():
            return
        if ok is True:
            answer.set_result(value)
        else:
            answer.set_exception(RuntimeError(f"replica {self.name}: {value}"))

    def _gone(self) -> None:
        died = ReplicaDied(f"replica {self.name} went away (exit {self._process.exitcode})")
        for answer in [self._ready, *self._waiting.values()]:
            if not answer.done():
                answer.set_exception(died)
                answer.exception()  # retrieved: an unawaited start is not an error of its own
        self._waiting.clear()
        if not self._closed.done():
            self._closed.set_result(None)
