"""The service's HTTP routes: health, readiness and metrics, the WPC registry, the model
proxy, and the chat channels (Slack, Teams, the local console) mounted on one application.

DESIGN §3 plans two listeners: the public one for what the outside must reach (webhooks,
``/healthz``, ``/readyz``), an internal loopback one for the model proxy, the registry's
write side and ``/metrics``. Until the second listener exists everything is mounted here.
The tool gateway has no HTTP route: its callers (the executors, the planned MCP gateway)
call it in-process.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from adapters.console import ConsoleChannel
from adapters.slack import SlackAdapter, SlackConfig
from adapters.teams import TeamsBot
from bot import metrics
from bot.assembly import Assembly
from bot.console_room import ConsoleRoom
from bot.job_commands import chat_ports
from bot.model_proxy import add_proxy_routes
from bot.registry import add_registry_routes
from engine.job import OPEN, RESOLVED
from engine.ports import JobStore


def mount_routes(app: web.Application, parts: Assembly) -> list[Any]:
    """Mount every route on ``app``; return the chat adapters (deliver_queued, close)."""
    health = _Health(parts.store)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    if parts.proxy is not None:
        add_proxy_routes(app, parts.proxy)
    add_registry_routes(app, parts.store, {parts.keys.publisher.did})
    return _mount_chats(app, parts)


def _mount_chats(app: web.Application, parts: Assembly) -> list[Any]:
    service = parts.service
    chats: list[Any] = []
    slack = SlackConfig.from_env(parts.settings.environ)
    if slack is not None:
        adapter = SlackAdapter(slack, chat_ports(service), names=parts.names)
        adapter.mount(app)
        service.notifier.register(adapter)
        chats.append(adapter)
    if parts.teams is not None:
        bot = TeamsBot(
            parts.teams, chat_ports(service), names=parts.names, target_tenant_id=parts.tenant_id
        )
        bot.mount(app)
        service.notifier.register(bot)
        chats.append(bot)
    if parts.settings.simulated and parts.settings.console:
        console = ConsoleChannel()
        console.mount(app, ConsoleRoom(parts).handlers())
        service.notifier.register(console)
    return chats


class _Health:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        try:
            counts = await self.store.count_jobs()
        except Exception as exc:  # readiness reports any failure, never raises
            return web.json_response({"ready": False, "error": type(exc).__name__}, status=503)
        open_jobs = sum(n for state, n in counts.items() if state in OPEN)
        return web.json_response({"ready": True, "open_jobs": open_jobs})

    async def metrics(self, _request: web.Request) -> web.Response:
        counts = await self.store.count_jobs()  # one GROUP BY, no documents read
        for state in sorted(OPEN | RESOLVED):
            metrics.JOBS.labels(state).set(counts.get(state, 0))
        return web.Response(body=generate_latest(metrics.REGISTRY), content_type="text/plain")
