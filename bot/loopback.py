"""Serve an aiohttp application on a local address (port 0 picks a free port).

Handlers are cancelled when their client hangs up (``handler_cancellation``): a proxy
relaying a stream must notice at once, not at the next chunk, so the upstream is cut too.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Served:
    runner: web.AppRunner
    url: str  # e.g. http://127.0.0.1:41234

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> Served:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    return Served(runner, f"http://{bound_host}:{bound_port}")
