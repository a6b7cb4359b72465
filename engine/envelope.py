"""The clawsig signed envelope (DESIGN §4), produced and verified in one place.

The signature is Ed25519 over the UTF-8 bytes of ``payload_hash_b64u``; the hash is SHA-256
of the payload's canonical JSON. We build payloads with sorted keys, so the JCS hash equals
the reference implementation's insertion-order hash; verifiers accept either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.canonical import insertion_order_json, jcs
from engine.did import Signer, public_key_from_did, verify_signature
from engine.encoding import b64u_decode, b64u_encode, sha256_b64u
from engine.errors import InputError, VerificationError
from engine.timeutil import iso_ms, parse_iso

ENVELOPE_VERSION = "1"
HASH_ALGORITHM = "SHA-256"
SIGNATURE_ALGORITHM = "Ed25519"
REQUIRED_FIELDS = (
    "envelope_version",
    "envelope_type",
    "payload",
    "payload_hash_b64u",
    "hash_algorithm",
    "signature_b64u",
    "algorithm",
    "signer_did",
    "issued_at",
)
_OPTIONAL = ("expires_at",)
REQUIRED_KEYS = frozenset(REQUIRED_FIELDS)  # sets built once: checked per receipt
ALLOWED_KEYS = frozenset((*REQUIRED_FIELDS, *_OPTIONAL))
_STRINGS = tuple(name for name in REQUIRED_FIELDS if name != "payload")


def sorted_json(value: Any) -> Any:
    """A copy of a JSON value with every object's keys in sorted order."""
    if isinstance(value, Mapping):
        return {key: sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [sorted_json(item) for item in value]
    return value


def payload_hash(payload: Mapping[str, Any]) -> str:
    return sha256_b64u(jcs(payload))


def sign_envelope(
    envelope_type: str, payload: Mapping[str, Any], signer: Signer, issued_at: datetime
) -> dict[str, Any]:
    """Sign ``payload`` (keys sorted first) into an envelope of ``envelope_type``."""
    body = sorted_json(payload)
    digest = payload_hash(body)
    return {
        "envelope_version": ENVELOPE_VERSION,
        "envelope_type": envelope_type,
        "payload": body,
        "payload_hash_b64u": digest,
        "hash_algorithm": HASH_ALGORITHM,
        "signature_b64u": b64u_encode(signer.sign(digest.encode("utf-8"))),
        "algorithm": SIGNATURE_ALGORITHM,
        "signer_did": signer.did,
        "issued_at": iso_ms(issued_at),
    }


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope that passed every check; use ``payload`` from here, never re-parse."""

    envelope_type: str
    payload: Mapping[str, Any]
    payload_hash_b64u: str
    signer_did: str
    issued_at: str


def check_envelope_shape(envelope: object, expected_types: Collection[str]) -> Mapping[str, Any]:
    """Steps (0)-(4): fields present and typed, known version, type and algorithms."""
    if not isinstance(envelope, Mapping):
        raise VerificationError("MALFORMED_ENVELOPE", "envelope is not an object")
    if not envelope.keys() >= REQUIRED_KEYS:
        missing = [name for name in REQUIRED_FIELDS if name not in envelope]
        raise VerificationError("MALFORMED_ENVELOPE", f"missing {', '.join(missing)}")
    extra = envelope.keys() - ALLOWED_KEYS
    if extra:
        raise VerificationError("MALFORMED_ENVELOPE", f"unexpected {', '.join(sorted(extra))}")
    if not isinstance(envelope["payload"], Mapping) or not all(
        isinstance(envelope[name], str) for name in _STRINGS
    ):
        raise VerificationError("MALFORMED_ENVELOPE", "field of the wrong type")
    _check_times(envelope)
    if envelope["envelope_version"] != ENVELOPE_VERSION:
        raise VerificationError("UNKNOWN_ENVELOPE_VERSION", "envelope_version is not 1")
    if envelope["envelope_type"] not in expected_types:
        raise VerificationError("UNKNOWN_ENVELOPE_TYPE", "unexpected envelope_type")
    if envelope["hash_algorithm"] != HASH_ALGORITHM:
        raise VerificationError("UNKNOWN_HASH_ALGORITHM", "hash_algorithm is not SHA-256")
    if envelope["algorithm"] != SIGNATURE_ALGORITHM:
        raise VerificationError("UNKNOWN_ALGORITHM", "algorithm is not Ed25519")
    return envelope


def _check_times(envelope: Mapping[str, Any]) -> None:
    """``issued_at`` (and ``expires_at`` if present) are not signed: check them instead."""
    for name in ("issued_at", *(n for n in _OPTIONAL if n in envelope)):
        try:
            parse_iso(envelope[name])
        except InputError as exc:
            raise VerificationError("MALFORMED_ENVELOPE", f"{name} is not RFC 3339") from exc


def check_payload_hash(envelope: Mapping[str, Any]) -> None:
    """Step (6): the claimed hash is the JCS or the as-received insertion-order hash."""
    payload = envelope["payload"]
    claimed = envelope["payload_hash_b64u"]
    try:
        # Insertion order first: for our sorted payloads it equals JCS and costs far less.
        if claimed == sha256_b64u(insertion_order_json(payload)):
            return
        if claimed == payload_hash(payload):
            return
    except (InputError, ValueError, TypeError) as exc:
        raise VerificationError("HASH_MISMATCH", "payload cannot be hashed") from exc
    raise VerificationError("HASH_MISMATCH", "payload_hash_b64u does not match the payload")


def verify_envelope(
    envelope: object,
    *,
    expected_types: Collection[str],
    allowed_signers: Collection[str],
    check_payload: Callable[[Mapping[str, Any]], None] | None = None,
    verified: Collection[tuple[str, str, str]] = frozenset(),
) -> VerifiedEnvelope:
    """Verify a signed envelope, raising VerificationError with the reason code.

    Steps: (0)-(4) shape, version, type, algorithms; (5) ``check_payload`` (the caller's
    schema check, raising SCHEMA_VALIDATION_FAILED); (6) hash; (7) signer DID; (8)
    signature; (9) signer in ``allowed_signers`` (empty allows nobody). Does NOT check
    ``issued_at``/``expires_at`` against a clock, nor anything the payload means.
    ``verified``: (signer DID, payload hash, signature) already verified (in parallel).
    """
    env = check_envelope_shape(envelope, expected_types)
    if check_payload is not None:
        check_payload(env["payload"])
    check_payload_hash(env)
    public_key_from_did(env["signer_did"])
    if (env["signer_did"], env["payload_hash_b64u"], env["signature_b64u"]) not in verified:
        try:
            signature = b64u_decode(env["signature_b64u"])
        except InputError as exc:
            raise VerificationError("SIGNATURE_INVALID", "signature is not base64url") from exc
        verify_signature(env["signer_did"], env["payload_hash_b64u"].encode("utf-8"), signature)
    if env["signer_did"] not in allowed_signers:
        raise VerificationError("SIGNER_NOT_ALLOWED", "signer is not in the allowlist")
    return VerifiedEnvelope(
        envelope_type=env["envelope_type"],
        payload=env["payload"],
        payload_hash_b64u=env["payload_hash_b64u"],
        signer_did=env["signer_did"],
        issued_at=env["issued_at"],
    )
