"""``breakglass openclaw doctor``: is the pinned OpenClaw usable as the executor here?

Checks, in order: the installation under ``.openclaw/`` (``make openclaw``), its Node
(>= 24.16), the OpenClaw version (exactly the pinned one), the MCP name table, and that a
config generated the way the executor generates it passes ``openclaw config validate``.
Contacts no model, no MCP server and no registry.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

from adapters.openclaw.config import RunConfig, openclaw_config
from adapters.openclaw.install import (
    DEFAULT_ROOT,
    find_installation,
    node_version,
    openclaw_version,
    validate_generated,
)
from adapters.openclaw.names import check_table
from bot.commands.base import EXIT_OK, Command, Context, Group
from bot.scripted_model import SCRIPTED_MODEL_ID
from engine import catalog
from engine.tools import ToolRole

PLACEHOLDER = "doctor-placeholder-not-a-credential"


def sample_run() -> RunConfig:
    """A run with every write and read tool of the catalog, on placeholder endpoints."""
    tools = [t.name for t in catalog.TOOLS.values() if t.role in (ToolRole.WRITE, ToolRole.READ)]
    return RunConfig(
        proxy_url="http://127.0.0.1:1/v1",
        model=SCRIPTED_MODEL_ID,
        mcp_url="http://127.0.0.1:1/mcp",
        tools=tools,
        cst=PLACEHOLDER,
        mcp_secret=PLACEHOLDER,
    )


async def doctor(args: argparse.Namespace, ctx: Context) -> int:
    inst = find_installation(Path(args.root))
    ctx.home.ensure_root()
    home = Path(tempfile.mkdtemp(prefix="openclaw-doctor-", dir=ctx.home.root))
    try:
        node = await node_version(inst, home)
        print(f"node      {'.'.join(map(str, node))}  ({inst.node})")
        print(f"openclaw  {await openclaw_version(inst, home)}  ({inst.entry})")
        check_table()
        print(f"tools     {len(catalog.TOOLS)} catalog tools, each with one MCP-safe name")
        await validate_generated(inst, home, openclaw_config(sample_run()))
        print("config    a generated config passes `openclaw config validate`")
    finally:
        await asyncio.to_thread(shutil.rmtree, home, True)
    return EXIT_OK


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", default=str(DEFAULT_ROOT), help="the folder `make openclaw` installed into"
    )


GROUPS = (Group(("openclaw",), "OpenClaw as the agent runtime (docs/openclaw.md)"),)
COMMANDS = (
    Command(
        ("openclaw", "doctor"),
        "check Node, the pinned OpenClaw version and a generated config",
        doctor,
        _arguments,
    ),
)
