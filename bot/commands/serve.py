"""``breakglass serve``: run the service until SIGTERM or SIGINT.

Every start failure (settings, keys, store, a port in use) is one line and exit 2; the start
line says what runs and where; stopping leaves one line and no ``serve.json`` behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from dataclasses import replace
from pathlib import Path

from bot import logs
from bot.app import Runtime, clear_serve_state, serve_state
from bot.commands.base import EXIT_OK, Command, Context
from bot.commands.config import config_argument
from bot.config import load_settings
from bot.heap import freeze_start_up

log = logging.getLogger("breakglass.app")


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument("--host", help="public listener address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="public port (default 8080; 0 picks a free one)")


async def serve(args: argparse.Namespace, _ctx: Context) -> int:
    settings = load_settings(os.environ, Path(args.config) if args.config else None)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = replace(settings, **overrides)
    logs.configure(settings.log_level)
    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = False
    try:
        url = await runtime.start()
        started = True
        frozen = freeze_start_up()  # short full collections from here on (bot.heap)
        log.debug("start-up heap frozen: %d objects", frozen)
        label = " with the SIMULATED tenant" if settings.simulated else ""
        print(f"breakglass serving on {url}{label}: {runtime.describe()}", flush=True)
        await asyncio.to_thread(serve_state, settings.home, runtime.internal_url, os.getpid(), url)
        await stop.wait()
    finally:
        await runtime.stop()
        if started:  # never remove the state file of another instance we failed to replace
            await asyncio.to_thread(clear_serve_state, settings.home)
            log.info("stopped: every open job is resumable by the next start")
    return EXIT_OK


COMMANDS = (
    Command(
        ("serve",),
        "Run the service (with no configuration: the embedded default).",
        serve,
        _serve_arguments,
    ),
)
GROUPS = ()
