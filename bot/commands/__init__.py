"""The command registry of ``breakglass``: every group and command, in help order.

To add a command (``serve``, ``demo``, ``config check``, ...): write ``async def run(args,
ctx) -> int`` and a ``Command(path, help, run, arguments)`` in a module here, add a
``Group`` for any new grouping word, and list the module below. ``bot.cli`` builds the
parser, the ``--help`` texts and the error handling from this list; nothing else changes.
"""

from __future__ import annotations

from bot.commands import (
    config,
    demo,
    evidence,
    html_report,
    keys,
    openclaw,
    policy,
    serve,
    token,
    verify,
)
from bot.commands.base import Command, Context, Group

_MODULES = (keys, policy, token, verify, html_report, evidence, serve, config, demo, openclaw)

GROUPS: tuple[Group, ...] = tuple(g for m in _MODULES for g in m.GROUPS)
COMMANDS: tuple[Command, ...] = tuple(c for m in _MODULES for c in m.COMMANDS)

__all__ = ["COMMANDS", "GROUPS", "Command", "Context", "Group"]
