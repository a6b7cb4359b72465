"""The Teams app package shipped in deploy/teams/: manifest and icons as Teams requires them."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from adapters.teams.commands import parse

PACKAGE = Path(__file__).resolve().parents[3] / "deploy" / "teams"


def manifest() -> dict[str, Any]:
    return json.loads((PACKAGE / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_bot_is_a_placeholder_filled_at_packaging() -> None:
    doc = manifest()
    assert doc["manifestVersion"] == "1.17"
    assert doc["bots"][0]["botId"] == "${{BOT_APP_ID}}"
    assert doc["validDomains"] == ["${{BOT_DOMAIN}}"]


def test_the_commands_are_the_ones_the_bot_understands() -> None:
    commands = manifest()["bots"][0]["commandLists"][0]["commands"]
    titles = [c["title"] for c in commands]
    assert titles == ["request", "status", "kill", "help"]
    assert [parse(f"<at>Breakglass</at> {t}").name for t in titles] == titles
    assert all(len(c["description"]) <= 128 and len(c["title"]) <= 32 for c in commands)


def test_names_fit_teams_limits() -> None:
    doc = manifest()
    assert len(doc["name"]["short"]) <= 30
    assert len(doc["name"]["full"]) <= 100
    assert len(doc["description"]["short"]) <= 80
    assert len(doc["description"]["full"]) <= 4000


def test_icons_have_the_sizes_teams_asks_for() -> None:
    icons = manifest()["icons"]
    assert png_size(PACKAGE / icons["color"]) == (192, 192)
    assert png_size(PACKAGE / icons["outline"]) == (32, 32)
