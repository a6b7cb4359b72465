"""Who may sign what (the trust file), and the report a verification answers with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.did import public_key_from_did
from engine.errors import InputError, VerificationError

TRUST_VERSIONS = ("1",)  # the trust_version values of the trust files we write


@dataclass(frozen=True)
class Trust:
    """Who may sign what. Built from our trust file or the reference allowlist shapes."""

    agent_dids: frozenset[str]
    gateway_receipt_signer_dids: frozenset[str]
    token_issuer_dids: frozenset[str] = frozenset()
    registry_publisher_dids: frozenset[str] = frozenset()
    declares_breakglass: bool = False

    @classmethod
    def from_json(cls, doc: object) -> Trust:
        """Accept ``{"trust_version": "1", ...}`` (ours), the reference ``allowlists.v1``
        (``gateway_receipt_signer_dids`` + ``agent_did``) or a clawverify config.

        A ``trust_version`` marks our file: one we do not write is refused rather than read
        as a reference allowlist (that would quietly drop the break-glass rules). A DID that
        is mistyped or not a well-formed did:key is refused here: the trust file is at fault,
        not the bundle it would be used on."""
        if not isinstance(doc, Mapping):
            raise InputError("trust file is not a JSON object")
        if "allowlists" in doc:
            if not isinstance(doc["allowlists"], Mapping):
                raise InputError("trust file field allowlists must be a JSON object")
            doc = {**doc["allowlists"], **{k: v for k, v in doc.items() if k != "allowlists"}}
        ours = _check_version(doc)
        trust = cls(
            agent_dids=_dids(doc, "agent_dids") | _did(doc, "agent_did"),
            gateway_receipt_signer_dids=_dids(doc, "gateway_receipt_signer_dids"),
            token_issuer_dids=_dids(doc, "token_issuer_dids"),
            registry_publisher_dids=_dids(doc, "registry_publisher_dids"),
            declares_breakglass=ours,
        )
        if not trust.agent_dids:
            raise InputError("trust file names no agent DID: nothing could verify")
        return trust


def _check_version(doc: Mapping[str, Any]) -> bool:
    """Is ``doc`` our trust file? Raises InputError for a ``trust_version`` we do not write."""
    if "trust_version" not in doc:
        return False
    version = doc["trust_version"]
    if version not in TRUST_VERSIONS:  # by ==, so the integer 1 is not "1"
        known = ", ".join(repr(v) for v in TRUST_VERSIONS)
        raise InputError(f"trust file has trust_version {version!r:.32}; we read only {known}")
    return True


def _dids(doc: Mapping[str, Any], key: str) -> frozenset[str]:
    values = doc.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"trust file field {key} must be a list of DIDs")
    return frozenset(_checked(key, v) for v in values)


def _did(doc: Mapping[str, Any], key: str) -> frozenset[str]:
    """The one DID of field ``key``, if present (the reference allowlist's ``agent_did``)."""
    if key not in doc:
        return frozenset()
    value = doc[key]
    if not isinstance(value, str):
        raise InputError(f"trust file field {key} must be a DID string")
    return frozenset({_checked(key, value)})


def _checked(key: str, did: str) -> str:
    try:
        public_key_from_did(did)
    except VerificationError as err:
        raise InputError(
            f"trust file field {key}: {did!r:.64} is not a usable did:key ({err.message})"
        ) from None
    return did


@dataclass
class Report:
    valid: bool
    profile: str
    reason_codes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def fail(self, code: str, message: str) -> None:
        self.valid = False
        if code not in self.reason_codes:
            self.reason_codes.append(code)
        self.reasons.append(f"{code}: {message}")

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason_codes": self.reason_codes or ["OK"],
            "reasons": self.reasons,
            "profile": self.profile,
            **self.summary,
        }
