"""compose.yaml and the Dockerfile name only variables the settings read (a typo or a plain
variable where only NAME_FILE exists would silently turn a platform off)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config_env import SECRET, VARIABLES

REPO = Path(__file__).resolve().parents[3]
KNOWN = set(VARIABLES) | {
    f"{name}_FILE" for name, (_p, kind) in VARIABLES.items() if kind == SECRET
}


def test_every_variable_in_compose_is_read_by_the_settings() -> None:
    text = (REPO / "compose.yaml").read_text()
    named = set(re.findall(r"^\s+(BREAKGLASS_\w+):", text, flags=re.M))
    assert named, "compose.yaml sets no BREAKGLASS_ variable"
    assert named <= KNOWN, named - KNOWN
    for platform in ("SLACK_BOT_TOKEN_FILE", "TEAMS_APP_ID", "TEAMS_APP_PASSWORD_FILE"):
        assert f"BREAKGLASS_{platform}" in named


def test_the_image_checks_readiness_and_compose_restarts() -> None:
    assert "/readyz" in (REPO / "Dockerfile").read_text()
    compose = (REPO / "compose.yaml").read_text()
    assert "/readyz" in compose
    assert compose.count("restart: unless-stopped") == 2
    assert 'command: ["keys", "init"]' in compose


def test_every_variable_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    missing = [name for name in VARIABLES if f"`{name}`" not in text]
    assert not missing, missing
