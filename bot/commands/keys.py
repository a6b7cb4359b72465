"""``breakglass keys init`` and ``breakglass keys trust``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot import keys
from bot.commands.base import EXIT_OK, Command, Context, Group, print_json


async def init(_args: argparse.Namespace, ctx: Context) -> int:
    existed = {role for role in keys.ROLES if key_file(ctx, role).exists()}
    made, _any_new = keys.init_keys(ctx.home.root)
    for role in keys.ROLES:
        state = "kept" if role in existed else "created"
        print(f"{role:<10} {getattr(made, role).did}  ({state})")
    return EXIT_OK


def key_file(ctx: Context, role: str) -> Path:
    return keys.key_dir(ctx.home.root) / f"{role}.key"


async def trust(_args: argparse.Namespace, ctx: Context) -> int:
    print_json(keys.trust_document(ctx.keys()))
    return EXIT_OK


GROUPS = (Group(("keys",), "the service's signing keys under $BREAKGLASS_HOME/keys"),)
COMMANDS = (
    Command(("keys", "init"), "create missing signing keys (0600) and print their DIDs", init),
    Command(("keys", "trust"), "print the public trust file (DIDs) for verifiers", trust),
)
