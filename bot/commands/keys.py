"""``breakglass keys init`` and ``breakglass keys trust``."""

from __future__ import annotations

import argparse

from bot import keys
from bot.commands.base import EXIT_OK, Command, Context, Group, print_json


async def init(_args: argparse.Namespace, ctx: Context) -> int:
    made, created = keys.init_keys(ctx.home.root)
    for role in keys.ROLES:
        state = "created" if role in created else "kept"
        print(f"{role:<10} {getattr(made, role).did}  ({state})")
    return EXIT_OK


async def trust(_args: argparse.Namespace, ctx: Context) -> int:
    print_json(keys.trust_document(ctx.keys()))
    return EXIT_OK


GROUPS = (Group(("keys",), "the service's signing keys under $BREAKGLASS_HOME/keys"),)
COMMANDS = (
    Command(("keys", "init"), "create missing signing keys (0600) and print their DIDs", init),
    Command(("keys", "trust"), "print the public trust file (DIDs) for verifiers", trust),
)
