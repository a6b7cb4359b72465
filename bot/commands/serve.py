"""``breakglass serve`` and ``breakglass config check``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from bot import logs
from bot.app import Runtime, serve_state
from bot.commands.base import EXIT_OK, Command, Context, Group
from bot.config import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(os.environ, Path(args.config) if args.config else None)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="breakglass.toml (default: $BREAKGLASS_HOME/breakglass.toml if present)",
    )


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _config_argument(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8080; 0 picks a free one)")


async def serve(args: argparse.Namespace, ctx: Context) -> int:
    settings = _settings(args)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    logs.configure()
    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await runtime.start()
        label = " with the SIMULATED tenant" if settings.simulated else ""
        print(f"breakglass serving on {url}{label}", flush=True)
        await asyncio.to_thread(serve_state, settings.home, url, os.getpid())
        await stop.wait()
    finally:
        await runtime.stop()
    return EXIT_OK


async def config_check(args: argparse.Namespace, ctx: Context) -> int:
    settings = _settings(args)
    tenant = "simulated tenant" if settings.simulated else f"tenant {settings.tenant.tenant_id}"
    approvers = len(settings.approvers) or "default (simulated)"
    print(
        f"configuration OK: home {settings.home}, {tenant}, executor {settings.executor}, "
        f"approvers {approvers}, max {settings.max_minutes} min"
    )
    return EXIT_OK


GROUPS = (Group(("config",), "Check the service configuration."),)
COMMANDS = (
    Command(
        ("serve",),
        "Run the service (with no configuration: the embedded default).",
        serve,
        _serve_arguments,
    ),
    Command(
        ("config", "check"),
        "Validate breakglass.toml and the environment; say exactly what is wrong.",
        config_check,
        _config_argument,
    ),
)
