"""The running service: assembles the parts from the settings, mounts the HTTP routes,
listens, resumes every open job and runs the timers.

``Runtime.start()`` resumes every open job before it accepts work; ``stop()`` cancels the
timers and closes connections, leaving every open job resumable by the next start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.assembly import (
    SIMULATED_SEED,
    Assembly,
    assemble,
    default_directory,
    make_clock,
    seed_names,
    seed_people,
)
from bot.config import Settings
from bot.http_routes import mount_routes
from bot.service import JobService
from bot.timers import Timers
from engine.canonical import jcs

__all__ = [
    "SIMULATED_SEED",
    "Runtime",
    "default_directory",
    "seed_names",
    "seed_people",
    "serve_state",
]

log = logging.getLogger("breakglass.app")
OUTBOX_SECONDS = 15.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = make_clock(settings)
        self.app = web.Application()
        self.url = ""
        self.chats: list[Any] = []  # Slack / Teams adapters (deliver_queued, close)
        self._parts: Assembly | None = None
        self._runner: web.AppRunner | None = None
        self._timers = Timers()

    @property
    def service(self) -> JobService:
        if self._parts is None:
            raise RuntimeError("the runtime has not started")
        return self._parts.service

    async def start(self) -> str:
        parts = self._parts = await assemble(self.settings, self.clock)
        self.chats = mount_routes(self.app, parts)
        self.url = await self._listen()
        for chat in self.chats:
            await _maybe(chat, "start_socket_mode")
        parts.service.executor = parts.executor(self.url)
        await parts.service.resume()  # before any timer: open jobs are made whole first
        self._timers.every(self.settings.tick_seconds, parts.service.tick)
        self._timers.every(self.settings.sweep_seconds, self._sweep)
        self._timers.every(OUTBOX_SECONDS, self._drain_outbox)
        log.info("listening on %s (tenant: %s)", self.url, self.settings.tenant.mode)
        return self.url

    async def _listen(self) -> str:
        # handler_cancellation: a client hanging up cuts an upstream model stream at once
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _drain_outbox(self) -> None:
        """Deliver chat posts missed while a platform was unreachable."""
        for chat in self.chats:
            await chat.deliver_queued(self.clock())

    async def _sweep(self) -> None:
        assert self._parts is not None
        await self._parts.service.sweep()
        if self._parts.proxy is not None:
            await self._parts.proxy.purge_expired()

    async def stop(self) -> None:
        await self._timers.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        parts = self._parts
        if parts is not None:
            await parts.service.close()  # tasks, revocation listener, leases handed back
        for chat in self.chats:
            await chat.close()
        if parts is not None:
            await parts.close()


async def _maybe(obj: Any, method: str) -> None:
    call = getattr(obj, method, None)
    if call is not None:
        await call()


def serve_state(home: Path, url: str, pid: int) -> None:
    (home / "serve.json").write_bytes(jcs({"url": url, "pid": pid}))
