"""A large bundle's receipt signatures are checked by a helper process beside the other
checks; the report must be the one the sequential verifier gives, forged receipts included,
and a helper that dies leaves its share to the caller."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
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
        patch.setattr(signatures, "PARALLEL_FROM", 10**9)  # no helper is started
        sequential = verify_bundle(bundle, trust).to_json()
    return parallel, sequential


def _with_signature_of(bundle: dict[str, Any], forged: int, donor: int) -> dict[str, Any]:
    """The bundle with receipt ``forged`` carrying receipt ``donor``'s signature, re-signed."""
    edited = copy.deepcopy(bundle)
    receipts = edited["payload"]["receipts"]
    receipts[forged]["signature_b64u"] = receipts[donor]["signature_b64u"]
    return resign(edited, fixed_keys().agent)


def test_the_helper_answers_each_chunk_with_the_signatures_that_do_not_verify(
    large: tuple[dict[str, Any], Trust],
) -> None:
    bundle, _ = large
    signed = signatures.signed_of(bundle["payload"]["receipts"][:6])
    forged = list(signed[4])
    forged[2] = signed[5][2]  # another receipt's signature
    chunks = [[0, signed[:3]], [1, [signed[3], forged]]]
    lines = "".join(json.dumps(chunk) + "\n" for chunk in chunks)

    done = subprocess.run(
        signatures.helper_command(), input=lines.encode(), capture_output=True, check=True
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers == [[0, []], [1, [1]]]


def test_a_valid_large_bundle_verifies_as_it_does_sequentially(
    large: tuple[dict[str, Any], Trust], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, trust = large
    parallel, sequential = _reports(bundle, trust, monkeypatch)
    assert parallel["valid"] is True
    assert parallel == sequential


@pytest.mark.parametrize("forged", [150, RECEIPTS - 1], ids=["first chunk", "last chunk"])
def test_a_receipt_with_another_receipts_signature_is_refused_as_sequentially(
    large: tuple[dict[str, Any], Trust], monkeypatch: pytest.MonkeyPatch, forged: int
) -> None:
    bundle, trust = large
    parallel, sequential = _reports(_with_signature_of(bundle, forged, 3), trust, monkeypatch)
    assert parallel["valid"] is False
    assert parallel["reasons"][0].startswith("SIGNATURE_INVALID")
    assert parallel == sequential


def test_a_helper_that_dies_leaves_every_signature_to_the_caller(
    large: tuple[dict[str, Any], Trust], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, trust = large
    forged = _with_signature_of(bundle, 150, 3)
    dead = [sys.executable, "-c", "raise SystemExit(3)"]  # exits before it reads a line
    monkeypatch.setattr(signatures, "helper_command", lambda: dead)

    receipts = forged["payload"]["receipts"]
    check = signatures.start(receipts)
    if check is None:
        pytest.skip("one CPU here: the verifier checks each signature in turn")
    assert check.bad() == set(signatures.signed_of([receipts[150]]))
    report = verify_bundle(forged, trust).to_json()
    assert report["valid"] is False
    assert report["reasons"][0].startswith("SIGNATURE_INVALID")
