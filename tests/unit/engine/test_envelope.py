import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.did import Signer
from engine.envelope import sign_envelope, verify_envelope
from engine.errors import VerificationError
from tests.support.shared import conformance

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SIGNER = Signer.from_seed(bytes(range(32)))


def envelope(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return sign_envelope("tool_receipt", payload or {"b": 1, "a": "x"}, SIGNER, NOW)


def code_of(env: object, allowed: set[str] | None = None) -> str:
    with pytest.raises(VerificationError) as err:
        verify_envelope(
            env,
            expected_types={"tool_receipt"},
            allowed_signers={SIGNER.did} if allowed is None else allowed,
        )
    return err.value.code


def test_sign_then_verify_returns_the_payload() -> None:
    env = envelope()
    assert list(env["payload"]) == ["a", "b"]  # sorted keys: JCS hash == insertion hash
    assert env["issued_at"] == "2026-11-25T12:00:00.000Z"
    verified = verify_envelope(env, expected_types={"tool_receipt"}, allowed_signers={SIGNER.did})
    assert verified.payload == {"a": "x", "b": 1}
    assert verified.signer_did == SIGNER.did


def test_tampered_payload_is_hash_mismatch() -> None:
    env = envelope()
    env["payload"]["b"] = 2
    assert code_of(env) == "HASH_MISMATCH"


def test_swapped_payload_under_a_valid_signature_is_refused() -> None:
    first, second = envelope({"n": 1}), envelope({"n": 2})
    first["payload"], first["payload_hash_b64u"] = second["payload"], second["payload_hash_b64u"]
    first["signature_b64u"] = envelope({"n": 1})["signature_b64u"]
    assert code_of(first) == "SIGNATURE_INVALID"


def test_signer_outside_the_allowlist_and_empty_allowlist() -> None:
    other = Signer.generate()
    env = sign_envelope("tool_receipt", {"a": 1}, other, NOW)
    assert code_of(env) == "SIGNER_NOT_ALLOWED"
    assert code_of(envelope(), allowed=set()) == "SIGNER_NOT_ALLOWED"


def test_signer_did_replaced_breaks_the_signature() -> None:
    env = envelope()
    env["signer_did"] = Signer.generate().did
    assert code_of(env, allowed={env["signer_did"]}) == "SIGNATURE_INVALID"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("envelope_version", "2", "UNKNOWN_ENVELOPE_VERSION"),
        ("envelope_type", "gateway_receipt", "UNKNOWN_ENVELOPE_TYPE"),
        ("hash_algorithm", "BLAKE3", "UNKNOWN_HASH_ALGORITHM"),
        ("algorithm", "ES256", "UNKNOWN_ALGORITHM"),
        ("signer_did", "did:key:z6MkWRONG", "INVALID_DID_FORMAT"),
        ("payload", "not an object", "MALFORMED_ENVELOPE"),
        ("signature_b64u", "AA==", "SIGNATURE_INVALID"),
        ("extra_field", "x", "MALFORMED_ENVELOPE"),
    ],
)
def test_unknown_or_malformed_fields_fail_closed(field: str, value: str, code: str) -> None:
    env = envelope()
    env[field] = value
    assert code_of(env) == code


@pytest.mark.parametrize("missing", ["algorithm", "payload", "signer_did", "issued_at"])
def test_missing_field_is_malformed(missing: str) -> None:
    env = envelope()
    del env[missing]
    assert code_of(env) == "MALFORMED_ENVELOPE"


def test_not_an_object_is_malformed() -> None:
    assert code_of(["envelope"]) == "MALFORMED_ENVELOPE"


def test_reference_vector_verifies_with_insertion_order_hash() -> None:
    bundle = conformance("proof_bundle_pass.v1.json")
    receipt = copy.deepcopy(bundle["payload"]["receipts"][0])
    verified = verify_envelope(
        receipt, expected_types={"gateway_receipt"}, allowed_signers={receipt["signer_did"]}
    )
    assert verified.payload["receipt_id"] == "rcpt_conformance_001"
