from __future__ import annotations

import json

from adapters.teams.inbound_auth import _normal_url
from adapters.teams.render import BUNDLE_BLOCK_ID, _split_escaped, bundle_cards
from cards.teams import MAX_CARD_BYTES, size_of
from engine.canonical import jcs


def big_bundle() -> dict[str, object]:
    # Non-Latin text escapes to 6 bytes a character in the JSON Teams receives.
    return {
        "payload_hash_b64u": "h" * 43,
        "payload": {"notes": ['Überprüfung 監査 "quoted" \\ ' * 40 for _ in range(60)]},
    }


def joined(cards: list[dict[str, object]]) -> str:
    text = ""
    for card in cards:
        block = next(b for b in card["body"] if b.get("id") == BUNDLE_BLOCK_ID)  # type: ignore[attr-defined, union-attr]
        text += "".join(run["text"] for run in block["inlines"])
    return text


def test_a_large_bundle_is_split_within_the_card_limit_and_joins_back_exactly() -> None:
    bundle = big_bundle()
    cards = bundle_cards(bundle, "bg-1.bundle.json")
    assert len(cards) > 1
    assert all(size_of(card) <= MAX_CARD_BYTES for card in cards)
    assert joined(cards).encode() == jcs(bundle)


def test_a_small_bundle_is_one_card() -> None:
    cards = bundle_cards({"payload_hash_b64u": "x", "payload": {}}, "bg-2.bundle.json")
    assert len(cards) == 1
    assert "part 1 of 1" in cards[0]["fallbackText"]


def test_split_respects_the_escaped_budget() -> None:
    text = 'a"é監' * 1000
    pieces = _split_escaped(text, 500)
    assert "".join(pieces) == text
    assert all(len(json.dumps(p)) - 2 <= 500 for p in pieces)


def test_service_urls_compare_by_scheme_host_port_and_path() -> None:
    assert _normal_url("https://smba.trafficmanager.net/amer/") == _normal_url(
        "HTTPS://SMBA.trafficmanager.net:443/amer"
    )
    assert _normal_url("http://127.0.0.1:8080/") != _normal_url("http://127.0.0.1:8081/")
    assert _normal_url("https://a.example/x") != _normal_url("https://a.example/y")
