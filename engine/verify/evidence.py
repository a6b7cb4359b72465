"""What the break-glass checks read from a core-verified bundle, parsed once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine import chain
from engine.bundle import REVOCATION_TYPE
from engine.compact import expand
from engine.cst import check_claim_types
from engine.envelope import verify_envelope
from engine.errors import InputError, InvalidToken, VerificationError
from engine.receipts import content_hash
from engine.timeutil import parse_iso
from engine.verify.trust import Report, Trust
from engine.wpc import Policy, verify_wpc


def timestamp(text: object) -> datetime:
    try:
        return parse_iso(text)
    except InputError as exc:
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "bad timestamp") from exc


def to_second(text: object) -> datetime:
    """A timestamp at token granularity: ``iat`` counts whole seconds."""
    return timestamp(text).replace(microsecond=0)


@dataclass
class Call:
    at: datetime
    tool: str
    status: str
    args_hash: str
    token_scope_hash: str | None


@dataclass
class Evidence:
    """The bundle payload, its break-glass metadata, its policies and its chain."""

    payload: Mapping[str, Any]
    trust: Trust
    report: Report
    meta: Mapping[str, Any]
    events: Sequence[Mapping[str, Any]]
    policies: list[Policy]
    run_id: str
    token_claims: list[Mapping[str, Any]]
    revocations: list[Mapping[str, Any]]
    # Claims by scope hash: renewals of a token share one, so each hash may name several.
    tokens: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)

    @property
    def policy(self) -> Policy:
        """The policy the job was requested under (later ones are extensions)."""
        return self.policies[0]

    @property
    def by_hash(self) -> dict[str, Policy]:
        return {p.policy_hash_b64u: p for p in self.policies}

    def planned(self, path: Sequence[str]) -> tuple[str, str]:
        """(tool, arguments hash) of a planned call in the request's WPC terms."""
        node: Any = self.policy.terms
        for key in path:
            node = node[key]
        return str(node["tool"]), content_hash(node["arguments"])


def load_evidence(payload: Mapping[str, Any], trust: Trust, report: Report) -> Evidence:
    """Parse the break-glass metadata of a core-verified ``payload`` and verify its WPCs;
    VerificationError if absent."""
    meta = payload.get("metadata", {}).get("breakglass")
    if not isinstance(meta, Mapping):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "metadata.breakglass missing")
    envelopes = expand(meta.get("policies"), "metadata.breakglass.policies")
    if not envelopes:
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "metadata.breakglass.policies")
    policies = [verify_wpc(e, trust.registry_publisher_dids) for e in envelopes]
    events: Sequence[Mapping[str, Any]] = payload.get("event_chain", [])
    # ``payload`` passed verify_core, which checked every link and hash of a non-empty
    # chain; only an empty one is left to refuse (EMPTY_CHAIN), without hashing it all again.
    run_id = chain.check_chain(events) if not events else str(events[0]["run_id"])
    tokens = expand(meta.get("tokens", []), "metadata.breakglass.tokens")
    for claims in tokens:
        _check_claims(claims)
    revocations = expand(meta.get("revocations", []), "metadata.breakglass.revocations")
    for record in revocations:
        _check_revocation(record, trust)
    if not isinstance(meta.get("run", {}), Mapping):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "metadata.breakglass.run")
    return Evidence(payload, trust, report, meta, events, policies, run_id, tokens, revocations)


def _check_claims(claims: Mapping[str, Any]) -> None:
    try:
        check_claim_types(claims)
    except InvalidToken as exc:
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "token claims are malformed") from exc


def _check_revocation(record: Mapping[str, Any], trust: Trust) -> None:
    """A signed revocation of one jti at one time, by a token issuer."""
    body = verify_envelope(
        record, expected_types={REVOCATION_TYPE}, allowed_signers=trust.token_issuer_dids
    ).payload
    if not isinstance(body.get("jti"), str):
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "revocation names no jti")
    timestamp(body.get("revoked_at"))
