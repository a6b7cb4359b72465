"""The one table from the catalog's dotted tool names to MCP-safe names.

OpenClaw shows an MCP tool to the model as ``<server>__<tool>``, and OpenAI function names
allow only ``[A-Za-z0-9_-]``, so the catalog's dotted names cannot be used as they are.
The table is explicit (not a string rewrite) so that a new catalog tool has no MCP name
until someone adds it here and to docs/openclaw.md: unknown tools are never exposed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from engine import catalog
from engine.errors import ConfigError

SERVER_NAME = "breakglass"  # the mcp.servers key; provider-safe, so OpenClaw keeps it as is
_SAFE = re.compile(r"^[a-z][a-z0-9_]{0,47}\Z")

MCP_NAMES: Mapping[str, str] = MappingProxyType(
    {
        catalog.WRITE_ROLE: "graph_write_role_assignment",
        catalog.READ_ROLE: "graph_read_role_assignment",
        catalog.REMOVE_ROLE: "rollback_remove_role_assignment",
        catalog.EXCLUDE_GROUP: "graph_exclude_group_from_ca_policy",
        catalog.RESTORE_CA: "graph_restore_ca_policy",
        catalog.READ_CA: "graph_read_ca_policy",
        catalog.REVOKE_SESSIONS: "graph_revoke_sign_in_sessions",
        catalog.REVOKE_GROUP_SESSIONS: "graph_revoke_group_member_sessions",
        catalog.ADD_APP_PASSWORD: "graph_add_application_password",
        catalog.REMOVE_APP_PASSWORD: "rollback_remove_application_password",
        catalog.READ_ACTIVITY: "graph_read_activity",
        catalog.READ_EXCLUSION_ACTIVITY: "graph_read_exclusion_activity",
    }
)
CATALOG_NAMES: Mapping[str, str] = MappingProxyType({v: k for k, v in MCP_NAMES.items()})


def mcp_name(tool_name: str) -> str:
    """The MCP name of a catalog tool; a tool missing from the table is a config error."""
    name = MCP_NAMES.get(tool_name)
    if name is None or not _SAFE.match(name):
        raise ConfigError(f"tool {tool_name[:80]} has no MCP name in adapters/openclaw/names.py")
    return name


def openclaw_name(tool_name: str) -> str:
    """What OpenClaw offers the model for a catalog tool: ``<server>__<mcp name>``."""
    return f"{SERVER_NAME}__{mcp_name(tool_name)}"


def catalog_name(mcp_tool: str) -> str:
    """The catalog name of an MCP tool name; anything else is passed on as called, so the
    gateway refuses and receipts it (never silently dropped)."""
    return CATALOG_NAMES.get(mcp_tool, mcp_tool)


def check_table(names: Iterable[str] = catalog.TOOLS) -> None:
    """Every catalog tool has a distinct safe name (run by tests and the doctor)."""
    seen = [mcp_name(name) for name in names]
    if len(set(seen)) != len(seen):
        raise ConfigError("two catalog tools share an MCP name")
