"""Adaptive Cards validate against the official 1.5 schema; Block Kit passes slack_sdk's checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft6Validator
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from cards import slack, teams
from tests.unit.cards import samples

TEAMS_ONLY_KEYS = ("msteams",)  # Teams extensions the schema does not know


def schema_view(card: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in card.items() if k not in TEAMS_ONLY_KEYS}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.parametrize("name", sorted(samples.TEAMS))
def test_adaptive_card_validates_against_official_schema(
    name: str, adaptive_schema: dict[str, Any]
) -> None:
    card = samples.TEAMS[name]()
    Draft6Validator.check_schema(adaptive_schema)
    errors = list(Draft6Validator(adaptive_schema).iter_errors(schema_view(card)))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    assert card["type"] == "AdaptiveCard"
    assert version(card["version"]) <= (1, 5)


@pytest.mark.parametrize("name", sorted(samples.TEAMS))
def test_adaptive_card_is_small_and_mentions_nobody(name: str) -> None:
    card = samples.TEAMS[name]()
    assert len(json.dumps(card).encode()) < teams.MAX_CARD_BYTES
    assert "entities" not in card.get("msteams", {})
    clickable = [n for n in samples.walk(card) if "selectAction" in n]
    assert not clickable
    assert not [n for n in samples.walk(card) if n.get("type") == "Action.OpenUrl"]


def test_the_schema_would_catch_a_broken_card(adaptive_schema: dict[str, Any]) -> None:
    card = schema_view(samples.TEAMS["approval_approver"]())
    card["body"][0]["weight"] = "Heavy"
    assert list(Draft6Validator(adaptive_schema).iter_errors(card))


def test_the_schema_refuses_the_teams_extension_so_it_is_stripped(
    adaptive_schema: dict[str, Any],
) -> None:
    card = samples.TEAMS["receipt"]()
    assert "msteams" in card
    assert list(Draft6Validator(adaptive_schema).iter_errors(card))


def test_every_execute_has_a_submit_fallback_with_the_same_data() -> None:
    for render in samples.TEAMS.values():
        for node in samples.walk(render()):
            if node.get("type") == "Action.Execute" and "title" in node:
                fallback = node["fallback"]
                assert fallback["type"] == "Action.Submit"
                assert fallback["data"] == node["data"]


@pytest.mark.parametrize("name", sorted(n for n in samples.SLACK if not n.startswith("request")))
def test_block_kit_message_passes_slack_sdk_validation(name: str) -> None:
    message = samples.SLACK[name]()
    assert set(message) == {"text", "blocks"}
    assert 0 < len(message["blocks"]) <= slack.MAX_BLOCKS
    for block in Block.parse_all(message["blocks"]):
        block.validate_json()  # raises SlackObjectFormationError on any limit
    assert [b.to_dict() for b in Block.parse_all(message["blocks"])] == message["blocks"]
    assert len(message["text"]) <= slack.TEXT_LIMIT


@pytest.mark.parametrize("name", ["request_form", "request_form_prefilled"])
def test_request_modal_passes_slack_sdk_validation(name: str) -> None:
    modal = samples.SLACK[name]()
    view = View(**modal)
    view.validate_json()
    assert view.to_dict() == modal
    assert modal["type"] == "modal"


def test_a_block_over_a_slack_limit_is_refused_by_the_sdk() -> None:
    from slack_sdk.errors import SlackObjectFormationError

    block = samples.SLACK["approval"]()["blocks"][1]
    block["text"]["text"] = "x" * 3001
    with pytest.raises(SlackObjectFormationError):
        Block.parse_all([block])[0].validate_json()


# Worst cases: every list long, every text at its limit, in characters that JSON escapes to
# 6 (CJK) or 12 (astral emoji) bytes each. No card may fail to render: a kill result that
# cannot be posted hides a failed rollback.
WIDE = "漢字" * 3000
ASTRAL = "\U0001f600" * 5000


@pytest.mark.parametrize("text", [WIDE, ASTRAL, "x" * 20_000], ids=["cjk", "astral", "ascii"])
def test_worst_case_cards_fit_both_platforms(text: str) -> None:
    from tests.unit.cards.test_injection import hostile_views

    many = tuple(text for _ in range(100))
    for name, (card, message) in hostile_views(text, many).items():
        assert teams.size_of(card) <= teams.MAX_CARD_BYTES, name
        if message is not None and "blocks" in message and "type" not in message:
            assert len(message["blocks"]) <= slack.MAX_BLOCKS, name
            for block in Block.parse_all(message["blocks"]):
                block.validate_json()
