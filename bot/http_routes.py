"""The service's HTTP routes on its two listeners (DESIGN §3).

Public: the chat webhooks (Slack, Teams), the step-up callback, the read-only job reports
the audit summaries link (only with ``service.public_url``; see bot/job_report.py),
``/healthz`` and ``/readyz``: only what the outside must reach. Internal (loopback by
default): the model proxy, the WPC registry, ``/metrics`` and the local console, which
names who acts and has no login; plus ``/healthz`` and ``/readyz`` for local probes. The
tool gateway has no HTTP route: its callers (the executors, the planned MCP gateway) call it
in-process.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from adapters.console import ConsoleChannel
from adapters.slack import SlackAdapter
from adapters.teams import TeamsBot
from bot import metrics
from bot.assembly import Assembly
from bot.config_parts import is_loopback_host
from bot.console_room import ConsoleRoom
from bot.job_commands import chat_ports
from bot.job_report import add_report_route
from bot.model_proxy import add_proxy_routes
from bot.readiness import Readiness
from bot.registry import add_registry_routes
from bot.stepup import install_step_up
from engine.errors import ConfigError
from engine.job import OPEN, RESOLVED
from engine.ports import JobStore


def mount_routes(
    public: web.Application, internal: web.Application, parts: Assembly, readiness: Readiness
) -> list[Any]:
    """Mount every route on its listener; return the chat adapters (deliver_queued, close)."""
    health = _Health(parts.store, readiness)
    for app in (public, internal):
        app.middlewares.append(readiness.middleware)
        app.router.add_get("/healthz", health.healthz)
        app.router.add_get("/readyz", health.readyz)
    internal.router.add_get("/metrics", health.metrics)
    if parts.proxy is not None:
        add_proxy_routes(internal, parts.proxy)
    add_registry_routes(internal, parts.store, {parts.keys.publisher.did})
    install_step_up(public, parts)  # issue 17: the step-up callback, before the chats use it
    chats = _mount_chats(public, parts)
    add_report_route(public, parts)  # issue 18 §4: what the audit summaries link
    _mount_console(internal, parts)
    return chats


def _mount_chats(app: web.Application, parts: Assembly) -> list[Any]:
    service, settings = parts.service, parts.settings
    chats: list[Any] = []
    if settings.slack is not None:
        adapter = SlackAdapter(
            settings.slack,
            chat_ports(service),
            names=parts.names,
            public_url=settings.public_url or None,
        )
        adapter.mount(app)
        service.notifier.register(adapter)
        chats.append(adapter)
    if parts.teams is not None:
        bot = TeamsBot(
            parts.teams,
            chat_ports(service),
            names=parts.names,
            target_tenant_id=parts.tenant_id,
            public_url=settings.public_url or None,
        )
        bot.mount(app)
        service.notifier.register(bot)
        chats.append(bot)
    return chats


def _mount_console(app: web.Application, parts: Assembly) -> None:
    settings = parts.settings
    if not (settings.simulated and settings.console):
        return
    if not is_loopback_host(settings.internal_host) and not settings.allow_remote_console:
        # The settings refuse this already; the console itself never trusts that they did.
        raise ConfigError("the console binds to loopback unless service.allow_remote_console")
    console = ConsoleChannel(parts.names)
    any_host = not is_loopback_host(settings.internal_host)  # allow_remote_console
    console.mount(app, ConsoleRoom(parts).handlers(), any_host=any_host)
    parts.service.notifier.register(console)


class _Health:
    def __init__(self, store: JobStore, readiness: Readiness) -> None:
        self.store = store
        self.readiness = readiness

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        verdict = await self.readiness.check()
        return web.json_response(verdict, status=200 if verdict["ready"] else 503)

    async def metrics(self, _request: web.Request) -> web.Response:
        counts = await self.store.count_jobs()  # one GROUP BY, no documents read
        for state in sorted(OPEN | RESOLVED):
            metrics.JOBS.labels(state).set(counts.get(state, 0))
        return web.Response(body=generate_latest(metrics.REGISTRY), content_type="text/plain")
