"""``breakglass config check``: every problem of the settings, keys and store at once."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bot import keys, preflight
from bot.commands.base import EXIT_OK, EXIT_UNUSABLE, Command, Context, Group
from bot.config import Settings, check_settings


def config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="breakglass.toml (default: $BREAKGLASS_HOME/breakglass.toml if present)",
    )


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    config_argument(parser)
    parser.add_argument(
        "--online",
        action="store_true",
        help="also ask Graph, Slack and Teams to accept the configured credentials",
    )


async def check(args: argparse.Namespace, _ctx: Context) -> int:
    path = Path(args.config) if args.config else None
    settings, problems = check_settings(os.environ, path)
    if settings is not None:
        # A home that cannot be a directory stops every command the same way, at once.
        keys.check_dirs(settings.home)
        problems += preflight.key_problems(settings)
        problems += await preflight.store_problems(settings)
        if args.online:
            problems += await preflight.online_problems(settings)
        for note in settings.notes:
            print(f"note: {note}")
    if problems:
        for problem in problems:
            print(f"breakglass: {problem}", file=sys.stderr)
        print(f"breakglass: {len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_UNUSABLE
    assert settings is not None
    print(f"configuration OK: {summary(settings)}")
    return EXIT_OK


def summary(settings: Settings) -> str:
    """What will run: store, tenant, executor, chat platforms and both listeners."""
    tenant = "simulated tenant" if settings.simulated else f"tenant {settings.tenant.tenant_id}"
    chats = [name for name in ("slack", "teams") if getattr(settings, name) is not None]
    if settings.simulated and settings.console:
        chats.append("console")
    return (
        f"store {preflight.safe_database(settings)}, {tenant}, executor {settings.executor}, "
        f"chat {'+'.join(chats) or 'none'}, public {settings.host}:{settings.port}, "
        f"internal {settings.internal_host}:{settings.internal_bind_port}"
    )


GROUPS = (Group(("config",), "Check the service configuration."),)
COMMANDS = (
    Command(
        ("config", "check"),
        "Check breakglass.toml, the environment, keys and store; list every problem.",
        check,
        _check_arguments,
    ),
)
