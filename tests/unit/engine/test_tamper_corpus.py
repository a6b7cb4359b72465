"""The whole tamper corpus is rejected with the right reason; the good bundles verify;
and the committed corpus is exactly what the generator produces (drift check)."""

import json
from pathlib import Path

import pytest

from engine.verify import Trust, verify_bundle
from tests.corpus.generate import HERE, corpus

EXPECTED: dict[str, str] = json.loads((HERE / "expected.json").read_text())
TRUST = Trust.from_json(json.loads((HERE / "trust.json").read_text()))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verifier_verdict(name: str) -> None:
    bundle = json.loads((HERE / f"{name}.bundle.json").read_text())
    report = verify_bundle(bundle, TRUST)
    if EXPECTED[name] == "OK":
        assert report.valid, report.reasons
    else:
        assert not report.valid
        assert EXPECTED[name] in report.reason_codes, report.reasons


def test_corpus_has_the_named_attacks() -> None:
    for name in (
        "dropped_receipt",
        "reordered_events",
        "edited_tool_args_hash",
        "truncated_tail",
        "swapped_policy",
        "foreign_signer",
        "self_approval",
        "single_approver",
        "approval_after_issue",
        "call_after_expiry",
        "missing_revocation",
    ):
        assert name in EXPECTED


def test_regenerating_the_corpus_changes_nothing() -> None:
    fresh = corpus()
    committed = {p.name: p.read_text(encoding="utf-8") for p in Path(HERE).glob("*.json")}
    assert sorted(fresh) == sorted(committed), "corpus files added or removed: run make corpus"
    drifted = [name for name, text in fresh.items() if committed[name] != text]
    assert not drifted, f"corpus drifted, run make corpus and review: {drifted}"
