"""Contract: the official Adaptive Cards JS renderer (under jsdom) parses every card cleanly, and
pressing each button yields the verb and data that ``cards.actions.from_teams`` parses back.

Set-up: ``npm ci`` into tests/contract/node/node_modules (git-ignored) once per lock file; one
node process then renders every card, JSON in and out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cards.actions import CardAction, Verb, from_teams
from cards.forms import request_from_teams
from tests.unit.cards import samples
from tests.unit.cards.test_injection import HOSTILE, hostile_views

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent / "node"
STAMP = NODE_DIR / "node_modules" / ".installed-lock-sha256"

V = Verb
EXPECTED_VERBS: dict[str, list[Verb]] = {
    "approval_approver": [V.APPROVE, V.DENY],
    "approval_simulated_ca": [V.APPROVE, V.DENY],
    "approval_withdraw": [V.WITHDRAW],
    "approval_read_only": [V.REFRESH],  # "Show my options"
    "status_active": [V.KILL, V.DONE, V.EXTEND],
    "status_simulated": [V.KILL, V.DONE, V.EXTEND],
}
REFRESHED = {
    "approval_approver",
    "approval_read_only",
    "approval_withdraw",
    "approval_simulated_ca",
}


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("NO ADAPTIVE CARD RENDERER CONTRACT CHECK: node or npm is not installed")
    return node, npm


def _install(npm: str) -> None:
    lock = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text() == lock:
        return
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=600,
        capture_output=True,
    )
    STAMP.write_text(lock)


def _cards() -> dict[str, dict[str, Any]]:
    cards = {name: render() for name, render in samples.TEAMS.items()}
    for case, text in HOSTILE.items():
        for moment, (card, _) in hostile_views(text).items():
            cards[f"hostile/{case}/{moment}"] = card
    return cards


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    node, npm = _tools()
    _install(npm)
    result = subprocess.run(
        [node, str(NODE_DIR / "render.cjs")],
        input=json.dumps(_cards()),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    out: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return out


def test_every_card_was_rendered(rendered: dict[str, dict[str, Any]]) -> None:
    assert set(rendered) == set(_cards())
    crashed = {name: r["crash"][:300] for name, r in rendered.items() if "crash" in r}
    assert not crashed


@pytest.mark.parametrize("name", sorted(samples.TEAMS))
def test_card_parses_and_validates_without_warnings(
    name: str, rendered: dict[str, dict[str, Any]]
) -> None:
    result = rendered[name]
    assert result["version"] == "1.5"
    assert result["events"] == []
    assert result["failures"] == []
    assert result["warnings"] == []
    assert result["links"] == 0
    assert result["markup"] == 0


@pytest.mark.parametrize(
    ("kind", "action_type"),
    [("actions", "Action.Execute"), ("legacy", "Action.Submit")],  # legacy: the Submit fallback
)
@pytest.mark.parametrize("name", sorted(EXPECTED_VERBS))
def test_pressing_each_button_or_its_fallback_parses_back(
    name: str, kind: str, action_type: str, rendered: dict[str, dict[str, Any]]
) -> None:
    pressed = rendered[name][kind]
    assert all(p["type"] == action_type for p in pressed)
    parsed = [from_teams(p["verb"] if kind == "actions" else None, p["data"]) for p in pressed]
    assert parsed == [CardAction(v, samples.JOB, samples.PLAN) for v in EXPECTED_VERBS[name]]


@pytest.mark.parametrize("name", sorted(REFRESHED))
def test_refresh_runs_for_the_designated_approvers(
    name: str, rendered: dict[str, dict[str, Any]]
) -> None:
    refresh = rendered[name]["refresh"]
    assert refresh["userIds"] == list(samples.TEAMS_APPROVERS)
    action = from_teams(refresh["pressed"]["verb"], refresh["pressed"]["data"])
    assert action == CardAction(Verb.REFRESH, samples.JOB, samples.PLAN)


def test_cards_without_buttons_have_none(rendered: dict[str, dict[str, Any]]) -> None:
    quiet = set(samples.TEAMS) - set(EXPECTED_VERBS) - {"request_form", "request_form_prefilled"}
    for name in quiet:
        assert rendered[name]["actions"] == [], name


def test_request_form_submits_its_inputs(rendered: dict[str, dict[str, Any]]) -> None:
    (pressed,) = rendered["request_form_prefilled"]["actions"]
    values, context = request_from_teams(pressed["data"])
    assert values == samples.request_form(prefilled=True).values
    assert context == "C0123ABC"
    # Empty required inputs stop the renderer from submitting at all.
    assert rendered["request_form"]["actions"] == [None]


def test_hostile_text_renders_as_plain_text(rendered: dict[str, dict[str, Any]]) -> None:
    for name, result in rendered.items():
        if not name.startswith("hostile/"):
            continue
        assert result["events"] == [], name
        assert result["links"] == 0, name
        assert result["markup"] == 0, name
        assert "\u202e" not in result["text"], name
    shown = rendered["hostile/markdown_link/approval"]["text"]
    assert "[click](http[:]//evil.example)" in shown
    assert "*bold* and _italic_" in rendered["hostile/markdown_bold/approval"]["text"]
