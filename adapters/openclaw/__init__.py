"""OpenClaw as the agent runtime, confined to the break-glass tool path (docs/openclaw.md).

- :mod:`names`: the one table from catalog tool names to MCP-safe names;
- :mod:`config`: the per-job OpenClaw config generated from the signed WPC;
- :mod:`install`: the pinned Node and OpenClaw under ``.openclaw/`` and the doctor's checks;
- :mod:`runner`: ``openclaw agent exec`` as a child process group, and its envelope;
- :mod:`mcp_gateway`: the MCP server OpenClaw calls, forwarding to the tool gateway.
"""
