"""Who may sign what (the trust file), and the report a verification answers with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InputError


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
        (``gateway_receipt_signer_dids`` + ``agent_did``) or a clawverify config."""
        if not isinstance(doc, Mapping):
            raise InputError("trust file is not a JSON object")
        if isinstance(doc.get("allowlists"), Mapping):
            doc = {**doc["allowlists"], **{k: v for k, v in doc.items() if k != "allowlists"}}
        agents = _dids(doc, "agent_dids") | ({doc["agent_did"]} if "agent_did" in doc else set())
        trust = cls(
            agent_dids=frozenset(agents),
            gateway_receipt_signer_dids=_dids(doc, "gateway_receipt_signer_dids"),
            token_issuer_dids=_dids(doc, "token_issuer_dids"),
            registry_publisher_dids=_dids(doc, "registry_publisher_dids"),
            declares_breakglass=doc.get("trust_version") == "1",
        )
        if not trust.agent_dids:
            raise InputError("trust file names no agent DID: nothing could verify")
        return trust


def _dids(doc: Mapping[str, Any], key: str) -> frozenset[str]:
    values = doc.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"trust file field {key} must be a list of DIDs")
    return frozenset(values)


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
