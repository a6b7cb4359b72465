"""Step-up at approval: what a fresh sign-in must show before an approval counts.

The sign-in itself (OpenID Connect code + PKCE against Microsoft Entra, the ID token's
signature, issuer, audience and nonce) is checked by the sign-in adapter. What remains is
policy, and pure: the plan names the authentication context and how fresh the sign-in must
be; the evidence must belong to the approver, carry the context, be fresh at ``now`` and
not have been used before. The evidence never holds the token, only its hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.errors import CommandRefused
from engine.timeutil import from_epoch

CLOCK_SKEW = timedelta(seconds=60)  # tolerated difference between Entra's clock and ours

STEP_UP_REQUIRED = "STEP_UP_REQUIRED"  # the plan needs a step-up and none came with the click
STEP_UP_WRONG_USER = "STEP_UP_WRONG_USER"  # the ID token names someone else (oid)
STEP_UP_CONTEXT_MISSING = "STEP_UP_CONTEXT_MISSING"  # acrs lacks the authentication context
STEP_UP_STALE = "STEP_UP_STALE"  # auth_time older than the plan allows (or in the future)
STEP_UP_REPLAYED = "STEP_UP_REPLAYED"  # the same ID token (or callback) was used before
STEP_UP_PLAN_MISMATCH = "STEP_UP_PLAN_MISMATCH"  # the sign-in was begun for another plan
STEP_UP_FAILED = "STEP_UP_FAILED"  # the adapter refused the sign-in (see the detail)


@dataclass(frozen=True)
class StepUpEvidence:
    """What a verified ID token showed; ``token_hash_b64u`` is SHA-256 of the compact token."""

    subject: str  # the token's oid
    acrs: tuple[str, ...]
    amr: tuple[str, ...]
    auth_time: int  # epoch seconds
    issuer: str
    token_hash_b64u: str
    plan_hash: str  # the plan the sign-in was begun for (kept with its state)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["acrs"], out["amr"] = list(self.acrs), list(self.amr)
        return out


def required(plan_payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The plan's step-up terms (``acr``, ``max_age_seconds``), or None if it needs none."""
    access = plan_payload.get("metadata", {}).get("breakglass", {}).get("access") or {}
    terms = access.get("step_up")
    return terms if isinstance(terms, Mapping) else None


def check_evidence(
    terms: Mapping[str, Any],
    evidence: StepUpEvidence | None,
    *,
    principal: str,
    plan_hash: str,
    used: Iterable[str],
    now: datetime,
) -> None:
    """Raise CommandRefused unless ``evidence`` satisfies ``terms`` for ``principal`` now.

    Does NOT check the token's signature, issuer, audience or nonce: the adapter did.
    """
    if evidence is None:
        raise CommandRefused(STEP_UP_REQUIRED, "this approval needs a fresh sign-in with MFA")
    if evidence.plan_hash != plan_hash:
        raise CommandRefused(STEP_UP_PLAN_MISMATCH, "the sign-in was begun for another plan")
    if evidence.subject.lower() != principal.lower():
        raise CommandRefused(STEP_UP_WRONG_USER, "the sign-in is not the approver's")
    if str(terms["acr"]) not in evidence.acrs:
        raise CommandRefused(
            STEP_UP_CONTEXT_MISSING, f"the sign-in did not satisfy context {terms['acr']}"
        )
    signed_in = from_epoch(evidence.auth_time)
    oldest = now - timedelta(seconds=int(terms["max_age_seconds"])) - CLOCK_SKEW
    if not oldest <= signed_in <= now + CLOCK_SKEW:
        raise CommandRefused(STEP_UP_STALE, "the sign-in is not fresh enough; sign in again")
    if evidence.token_hash_b64u in set(used):
        raise CommandRefused(STEP_UP_REPLAYED, "this sign-in was already used")
