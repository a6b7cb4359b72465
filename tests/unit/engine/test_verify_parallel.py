"""A large bundle's receipt signatures are verified ahead on every core; the report must be
the one the sequential verifier gives, forged receipts included."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.fixtures import bundle_with_model_receipts
from engine.verify import signatures, verify_bundle
from engine.verify.trust import Trust
from tests.corpus.generate import resign
from tests.support.engine_sim import fixed_keys

RECEIPTS = signatures.PARALLEL_FROM + 44


@pytest.fixture(scope="module")
def large() -> tuple[dict[str, Any], Trust]:
    return bundle_with_model_receipts(RECEIPTS)


def _reports(bundle: dict[str, Any], trust: Trust, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """(parallel report, sequential report) as JSON."""
    parallel = verify_bundle(bundle, trust).to_json()
    with monkeypatch.context() as patch:
        patch.setattr(signatures, "PARALLEL_FROM", 10**9)  # the pool is never used
        sequential = verify_bundle(bundle, trust).to_json()
    return parallel, sequential


def test_the_signatures_of_a_large_bundle_are_checked_ahead(
    large: tuple[dict[str, Any], Trust],
) -> None:
    bundle, _ = large
    ahead = signatures.verified_ahead(bundle["payload"]["receipts"])
    if len(ahead) == 0:
        pytest.skip("one CPU here: the verifier checks each signature in turn")
    assert len(ahead) == RECEIPTS


def test_a_valid_large_bundle_verifies_as_it_does_sequentially(
    large: tuple[dict[str, Any], Trust], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, trust = large
    parallel, sequential = _reports(bundle, trust, monkeypatch)
    assert parallel["valid"] is True
    assert parallel == sequential


def test_a_receipt_with_another_receipts_signature_is_refused_as_sequentially(
    large: tuple[dict[str, Any], Trust], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, trust = large
    edited = copy.deepcopy(bundle)
    receipts = edited["payload"]["receipts"]
    receipts[150]["signature_b64u"] = receipts[151]["signature_b64u"]
    forged = resign(edited, fixed_keys().agent)  # the bundle itself is signed again

    parallel, sequential = _reports(forged, trust, monkeypatch)
    assert parallel["valid"] is False
    assert parallel["reasons"][0].startswith("SIGNATURE_INVALID")
    assert parallel == sequential
