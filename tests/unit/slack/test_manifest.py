"""The app manifest asks for exactly the scopes the code uses, and points Slack at our route."""

from __future__ import annotations

from pathlib import Path

from adapters.slack.edge import PATH
from adapters.slack.web import INBOUND_SCOPES, METHOD_SCOPES

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "slack" / "manifest.yaml"


def bot_scopes(text: str) -> set[str]:
    """The ``oauth_config.scopes.bot`` list (a two-line YAML walk; no YAML library needed)."""
    lines = text.splitlines()
    start = lines.index("    bot:") + 1
    scopes = set()
    for line in lines[start:]:
        if not line.startswith("      - "):
            break
        scopes.add(line.removeprefix("      - ").strip())
    return scopes


def test_manifest_scopes_are_exactly_what_the_code_uses() -> None:
    used = {s for s in METHOD_SCOPES.values() if s} | INBOUND_SCOPES
    assert bot_scopes(MANIFEST.read_text()) == used


def test_every_request_url_is_the_mounted_route() -> None:
    urls = [line.split("url: ")[1] for line in MANIFEST.read_text().splitlines() if "url: " in line]
    assert len(urls) == 3  # slash command, events, interactivity
    assert all(url.endswith(PATH) for url in urls)
