"""The per-job OpenClaw configuration, generated from the signed WPC.

Every key here is explained in docs/openclaw.md. In short: our receipting model proxy is
the only model provider (``models.mode: replace``); our MCP gateway is the only MCP server;
``tools.allow`` names exactly the WPC's tools under their OpenClaw names, and the runtime,
file and web groups are denied on top (deny wins), elevated exec is off, and Tool Search and
Code Mode are off so the model sees the tool schemas directly instead of bridge tools.
The config holds the job's CST (the proxy authenticates model calls with it): it is written
mode 0600 inside the run's own HOME and deleted when the run ends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.openclaw.names import SERVER_NAME, openclaw_name
from engine.errors import ConfigError

PROVIDER_ID = "breakglass"  # the OpenClaw provider id of our model proxy
CST_HEADER = "X-CST"  # what the model proxy reads the job's token from
DENIED_GROUPS = ("group:runtime", "group:fs", "group:web")
CONTEXT_WINDOW = 128_000
MAX_OUTPUT_TOKENS = 4_096
MCP_TIMEOUT_MS = 120_000  # a tool call may wait on Graph's throttling


@dataclass(frozen=True)
class RunConfig:
    """What one job's OpenClaw run is allowed to reach, and with which credentials."""

    proxy_url: str  # the model proxy's OpenAI base URL, e.g. http://127.0.0.1:8080/v1
    model: str  # the model id sent to the proxy (checked there against the WPC)
    mcp_url: str  # the MCP gateway's streamable HTTP endpoint
    tools: Sequence[str]  # catalog names of the tools to expose (the WPC's)
    cst: str = field(repr=False)
    mcp_secret: str = field(repr=False)  # names the job at the MCP gateway

    def __post_init__(self) -> None:
        for name, url in (("proxy_url", self.proxy_url), ("mcp_url", self.mcp_url)):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"openclaw {name} must be http(s)")
        if not self.tools:
            raise ConfigError("an OpenClaw run needs at least one tool of the WPC")
        if not self.model or "/" in self.model:
            raise ConfigError("the OpenClaw model id must be a plain model name")


def openclaw_config(run: RunConfig) -> dict[str, Any]:
    """The OpenClaw config document for one run (JSON; validated in tests)."""
    return {
        "models": {"mode": "replace", "providers": {PROVIDER_ID: _provider(run)}},
        "agents": {"defaults": {"model": {"primary": f"{PROVIDER_ID}/{run.model}"}}},
        "mcp": {"servers": {SERVER_NAME: _mcp_server(run)}},
        "tools": {
            "allow": [openclaw_name(name) for name in run.tools],
            "deny": list(DENIED_GROUPS),
            "elevated": {"enabled": False},
            "toolSearch": False,
            "codeMode": {"enabled": False},
        },
    }


def _provider(run: RunConfig) -> dict[str, Any]:
    model = {
        "id": run.model,
        "name": run.model,
        "reasoning": False,
        "input": ["text"],
        "contextWindow": CONTEXT_WINDOW,
        "maxTokens": MAX_OUTPUT_TOKENS,
    }
    return {
        "baseUrl": run.proxy_url,
        "api": "openai-completions",
        "apiKey": run.mcp_secret,  # required by OpenClaw; the proxy reads the CST header
        "headers": {CST_HEADER: run.cst},
        "models": [model],
    }


def _mcp_server(run: RunConfig) -> dict[str, Any]:
    return {
        "url": run.mcp_url,
        "transport": "streamable-http",
        "headers": {"Authorization": f"Bearer {run.mcp_secret}"},
        "requestTimeoutMs": MCP_TIMEOUT_MS,
    }


def write_config(path: Path, document: dict[str, Any]) -> Path:
    """Write the config readable by this user only (it carries the job's CST)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
    return path
