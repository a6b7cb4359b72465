"""The running service: assembles the parts from the settings, mounts the HTTP routes on two
listeners, resumes every open job and runs the timers.

The **public** listener carries what the outside must reach (chat webhooks, ``/healthz``,
``/readyz``); the **internal** one, loopback by default, carries the model proxy, the
registry, ``/metrics`` and the console (DESIGN §3). ``Runtime.start()`` resumes every open
job before it accepts work; ``stop()`` cancels the timers and closes connections, leaving
every open job resumable by the next start. A start that cannot bind, open the store or
load the keys raises ``ConfigError`` naming what to fix.
"""

from __future__ import annotations

import errno
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
from bot.preflight import safe_database
from bot.readiness import Readiness
from bot.service import JobService
from bot.stepup import listening
from bot.timers import Timers
from engine.canonical import jcs
from engine.errors import ConfigError, StoreError, describe

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
SERVE_STATE = "serve.json"


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = make_clock(settings)
        self.app = web.Application()  # public
        self.internal = web.Application()
        self.url = ""  # the public listener
        self.internal_url = ""
        self.chats: list[Any] = []  # Slack / Teams adapters (deliver_queued, close)
        self._parts: Assembly | None = None
        self._runners: list[web.AppRunner] = []
        self._timers = Timers()
        self.readiness: Readiness | None = None

    @property
    def service(self) -> JobService:
        if self._parts is None:
            raise RuntimeError("the runtime has not started")
        return self._parts.service

    async def start(self) -> str:
        """Start everything; return the public listener's URL."""
        parts = self._parts = await _assemble(self.settings, self.clock)
        self.readiness = Readiness(parts.store, self.clock)
        self.chats = mount_routes(self.app, self.internal, parts, self.readiness)
        s = self.settings
        self.url = await self._listen(self.app, s.host, s.port, "service.port")
        self.internal_url = await self._listen(
            self.internal, s.internal_host, s.internal_bind_port, "service.internal_port"
        )
        listening(parts.service, self.url)  # issue 17: the step-up redirect URI, if not public
        for chat in self.chats:
            await _maybe(chat, "start_socket_mode")
        parts.service.executor = parts.executor(self.internal_url)
        await parts.service.resume()  # before any timer: open jobs are made whole first
        await self.readiness.probe()  # a full disk stops no start, but it is not ready
        self._timers.every(s.tick_seconds, self._tick)
        self._timers.every(s.sweep_seconds, self._sweep)
        self._timers.every(OUTBOX_SECONDS, self._drain_outbox)
        log.info("started: %s", self.describe())
        for note in s.notes:
            log.warning("note: %s", note)
        return self.url

    def describe(self) -> str:
        """The start line: store, tenant, executor, chat platforms and both listeners."""
        s, parts = self.settings, self._parts
        tenant = f"{'simulated ' if s.simulated else ''}tenant {parts.tenant_id if parts else '?'}"
        if parts is not None and parts.simulator is not None:  # its control API: docs/graph.md
            tenant += f" at {parts.simulator.base_url}"
        chats = [getattr(c, "platform", "?") for c in self.chats]
        internal = "model proxy, registry, metrics"
        if s.simulated and s.console:
            chats.append("console")
            internal += ", console"
        return (
            f"store {safe_database(s)}; {tenant}; executor {s.executor}; "
            f"chat {', '.join(chats) or 'none'}; public {self.url}"
            f"{f' (reached as {s.public_url})' if s.public_url else ''}; "
            f"internal {self.internal_url} ({internal})"
        )

    async def _listen(self, app: web.Application, host: str, port: int, setting: str) -> str:
        # handler_cancellation: a client hanging up cuts an upstream model stream at once
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        self._runners.append(runner)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else "cannot be bound"
            raise ConfigError(f"{setting}: {host}:{port} {reason} ({exc.strerror})") from None
        bound_host, bound_port = runner.addresses[0][:2]
        return f"http://{bound_host}:{bound_port}"

    async def _tick(self) -> None:
        assert self._parts is not None
        assert self.readiness is not None
        await self.readiness.watch(self._parts.service.tick)

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
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        parts = self._parts
        if parts is not None:
            await _maybe(parts.service.executor, "close")  # OpenClaw's processes end, receipted
            await parts.service.close()  # tasks, revocation listener, leases handed back
        for chat in self.chats:
            await chat.close()
        if parts is not None:
            await parts.close()
            self._parts = None


async def _assemble(settings: Settings, clock: Any) -> Assembly:
    """The parts; a store that cannot be opened is a configuration problem (exit 2)."""
    try:
        return await assemble(settings, clock)
    except StoreError as err:
        variable = "BREAKGLASS_DATABASE_URL" if settings.database_url else "BREAKGLASS_HOME"
        raise ConfigError(
            f"{variable}: cannot use the store {safe_database(settings)}: {describe(err)}"
        ) from None


async def _maybe(obj: Any, method: str) -> None:
    call = getattr(obj, method, None)
    if call is not None:
        await call()


def serve_state(home: Path, url: str, pid: int, public_url: str = "") -> None:
    """Where a running service listens (``url``: the internal one, with the console)."""
    doc = {"url": url, "internal_url": url, "public_url": public_url or url, "pid": pid}
    partial = home / f".{SERVE_STATE}.partial"
    partial.write_bytes(jcs(doc))
    partial.replace(home / SERVE_STATE)  # atomic: a reader never sees half a file


def clear_serve_state(home: Path) -> None:
    (home / SERVE_STATE).unlink(missing_ok=True)
