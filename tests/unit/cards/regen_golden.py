"""Regenerate the golden card files: ``.venv/bin/python -m tests.unit.cards.regen_golden``.

``test_golden`` fails when a renderer's output drifts from these files; review the diff of a
regeneration like any code change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.unit.cards import samples

GOLDEN = Path(__file__).resolve().parent / "golden"
PLATFORMS = {"teams": samples.TEAMS, "slack": samples.SLACK}


def dump(card: dict[str, Any]) -> str:
    return json.dumps(card, indent=2, ensure_ascii=False) + "\n"


def expected() -> dict[Path, str]:
    """Every golden file's path and the text it must hold."""
    return {
        GOLDEN / platform / f"{name}.json": dump(render())
        for platform, table in PLATFORMS.items()
        for name, render in table.items()
    }


def main() -> None:
    for platform in PLATFORMS:
        for stale in (GOLDEN / platform).glob("*.json"):
            stale.unlink()
    for path, text in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(GOLDEN))


if __name__ == "__main__":
    main()
