"""Scoped tokens (CST): job-bound JWTs pinned to one WPC hash, and their revocation.

A CST is a JWS compact token (``{alg: EdDSA, typ: JWT, kid: <issuer did>}``) whose claims
follow ``scoped_token_claims.v1``. ``mission_id`` is the job id; ``policy_hash_b64u`` pins the
WPC; ``token_scope_hash_b64u`` is SHA-256 over the JCS of the authorization claims (all but
iat/exp/jti/nonce, with aud and scope sorted and de-duplicated). Revocation is keyed by
``jti``, never by the token string.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.canonical import jcs, strict_loads
from engine.did import Signer, public_key_from_did, verify_signature
from engine.encoding import b64u_decode, b64u_encode, sha256_b64u
from engine.envelope import sign_envelope
from engine.errors import InputError, InvalidToken, TemplateError, VerificationError
from engine.timeutil import epoch, iso_ms
from engine.tools import ToolRole
from engine.wpc import Policy

CLOCK_SKEW_SECONDS = 5  # tolerated clock difference between issuer and verifier
MAX_TOKEN_BYTES = 8192
GATEWAY_AUDIENCE = "breakglass:tool-gateway"
PROXY_AUDIENCE = "breakglass:model-proxy"
REVOCATION_TYPE = "breakglass_revocation"
_HEADER_KEYS = {"alg", "typ", "kid"}
_NOT_AUTHORIZATION = {"iat", "exp", "jti", "nonce", "token_scope_hash_b64u"}
_CLAIM_TYPES: dict[str, type | tuple[type, ...]] = {
    "token_version": str,
    "sub": str,
    "aud": (str, list),
    "scope": list,
    "iat": int,
    "exp": int,
    "jti": str,
    "nonce": str,
    "policy_hash_b64u": str,
    "token_scope_hash_b64u": str,
    "mission_id": str,
    "agent_did": str,
}


class TokenKind:
    AGENT = "agent"  # the executor: the WPC's tools and its model
    ROLLBACK = "rollback"  # issued by the engine at the end: rollback and read tools only


def tool_scope(tool_name: str) -> str:
    return f"tool:execute:{tool_name}"


def scope_for(policy: Policy, kind: str) -> list[str]:
    """The rollback's token reads and undoes; the agent's writes and reads. The agent never
    holds a rollback or containment tool: the engine runs those, and a hostile agent must
    not sign the responder out mid-incident (revoking sessions is one)."""
    if kind == TokenKind.ROLLBACK:
        tools = policy.tools_with_role({ToolRole.READ, ToolRole.ROLLBACK})
        return sorted({tool_scope(t) for t in tools})
    tools = policy.tools_with_role({ToolRole.WRITE, ToolRole.READ})
    return sorted({tool_scope(t) for t in tools} | {"model:invoke"})


def _audience(kind: str) -> list[str]:
    return [GATEWAY_AUDIENCE] if kind == TokenKind.ROLLBACK else [GATEWAY_AUDIENCE, PROXY_AUDIENCE]


def token_scope_hash(claims: Mapping[str, Any]) -> str:
    """SHA-256 of the JCS of the authorization claims, aud and scope sorted and de-duplicated."""
    auth = {k: v for k, v in claims.items() if k not in _NOT_AUTHORIZATION}
    aud = auth.get("aud")
    auth["aud"] = sorted(set([aud] if isinstance(aud, str) else aud or []))
    auth["scope"] = sorted(set(auth.get("scope") or []))
    return sha256_b64u(jcs(auth))


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return jcs(value)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: Mapping[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


def issue_token(
    policy: Policy,
    *,
    job_id: str,
    kind: str,
    issuer: Signer,
    agent_did: str,
    now: datetime,
    window_end: datetime,
    jti: str,
    nonce: str,
    ttl_seconds: int | None = None,
) -> IssuedToken:
    """Issue a CST for ``job_id`` pinned to ``policy``, with the caller's ``jti`` and ``nonce``
    (the engine derives them from the job's chain, so issuing stays deterministic).

    TTL is at most the policy's ``cst_max_ttl_minutes`` and at most the time left in the
    window; asking for more raises TemplateError rather than silently shortening.
    """
    if job_id != policy.job_id:
        raise TemplateError("the policy belongs to another job")
    left = epoch(window_end) - epoch(now)
    limit = min(policy.cst_max_ttl_seconds, left)
    if limit <= 0:
        raise TemplateError("the window has ended; no token can be issued")
    if ttl_seconds is not None and (ttl_seconds <= 0 or ttl_seconds > policy.cst_max_ttl_seconds):
        raise TemplateError(
            f"TTL {ttl_seconds}s is outside 1..{policy.cst_max_ttl_seconds}s (policy maximum)"
        )
    if ttl_seconds is not None and ttl_seconds > left:
        raise TemplateError(f"TTL {ttl_seconds}s is beyond the window ({left}s left)")
    ttl = ttl_seconds or limit
    claims: dict[str, Any] = {
        "agent_did": agent_did,
        "aud": _audience(kind),
        "exp": epoch(now) + ttl,
        "iat": epoch(now),
        "jti": jti,
        "mission_id": job_id,
        "nonce": nonce,
        "policy_hash_b64u": policy.policy_hash_b64u,
        "scope": scope_for(policy, kind),
        "sub": f"breakglass:{kind}:{job_id}",
        "token_version": "1",
    }
    claims["token_scope_hash_b64u"] = token_scope_hash(claims)
    return IssuedToken(sign_token(claims, issuer), claims)


def sign_token(claims: Mapping[str, Any], issuer: Signer) -> str:
    header = {"alg": "EdDSA", "kid": issuer.did, "typ": "JWT"}
    signing_input = b64u_encode(_compact_json(header)) + "." + b64u_encode(_compact_json(claims))
    return signing_input + "." + b64u_encode(issuer.sign(signing_input.encode("ascii")))


@dataclass(frozen=True)
class VerifiedToken:
    claims: Mapping[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def scope(self) -> frozenset[str]:
        return frozenset(self.claims["scope"])

    @property
    def kind(self) -> str:
        return str(self.claims["sub"]).split(":")[1]

    @property
    def expires_at_epoch(self) -> int:
        return int(self.claims["exp"])

    @property
    def token_scope_hash_b64u(self) -> str:
        return str(self.claims["token_scope_hash_b64u"])


def _decode_part(part: str) -> Any:
    try:
        return strict_loads(b64u_decode(part))
    except InputError as exc:
        raise InvalidToken("TOKEN_MALFORMED", "segment is not base64url JSON") from exc


def parse_token(token: object, trusted_issuers: Collection[str]) -> Mapping[str, Any]:
    """Steps (1)-(3): shape, header, issuer key and signature. Returns the raw claims."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("TOKEN_MALFORMED", "not a compact JWS")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("TOKEN_MALFORMED", "not three segments")
    header, claims = _decode_part(parts[0]), _decode_part(parts[1])
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise InvalidToken("TOKEN_MALFORMED", "unexpected header")
    if header["alg"] != "EdDSA" or header["typ"] != "JWT":
        raise InvalidToken("TOKEN_MALFORMED", "algorithm is not EdDSA")
    if header["kid"] not in trusted_issuers:
        raise InvalidToken("TOKEN_UNTRUSTED_ISSUER", "kid is not a trusted issuer")
    try:
        signature = b64u_decode(parts[2])
    except InputError as exc:
        raise InvalidToken("TOKEN_MALFORMED", "signature is not base64url") from exc
    try:
        public_key_from_did(header["kid"])
        verify_signature(header["kid"], f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
    except VerificationError as exc:
        raise InvalidToken("TOKEN_SIGNATURE_INVALID", "signature does not verify") from exc
    if not isinstance(claims, dict):
        raise InvalidToken("TOKEN_MALFORMED", "claims are not an object")
    return claims


def check_claim_types(claims: Mapping[str, Any]) -> None:
    """Every claim present with its type, nothing else; InvalidToken(TOKEN_MALFORMED) if not."""
    for name, kind in _CLAIM_TYPES.items():
        value = claims.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidToken("TOKEN_MALFORMED", f"claim {name} missing or mistyped")
    if set(claims) - set(_CLAIM_TYPES) or claims["token_version"] != "1":
        raise InvalidToken("TOKEN_MALFORMED", "unknown claims or token_version")
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if not claims["scope"] or not all(isinstance(s, str) for s in [*claims["scope"], *aud]):
        raise InvalidToken("TOKEN_MALFORMED", "scope and aud must be strings")


def verify_token(
    token: object,
    *,
    trusted_issuers: Collection[str],
    now: datetime,
    job_id: str,
    policy_hash_b64u: str,
    is_revoked: Callable[[str], bool],
    audience: str = GATEWAY_AUDIENCE,
) -> VerifiedToken:
    """Verify a CST for one job and one pinned policy, raising InvalidToken(reason).

    Order: (1) shape (2) header/issuer (3) signature (4) claim types (5) iat/exp with
    CLOCK_SKEW_SECONDS (6) revocation by jti (7) mission_id (8) policy pin (9) scope hash
    (10) audience. Does NOT check which tool is called: that is the gateway's next step.
    """
    return check_claims(
        parse_token(token, trusted_issuers),
        now=now,
        job_id=job_id,
        policy_hash_b64u=policy_hash_b64u,
        is_revoked=is_revoked,
        audience=audience,
    )


def check_claims(
    claims: Mapping[str, Any],
    *,
    now: datetime,
    job_id: str,
    policy_hash_b64u: str,
    is_revoked: Callable[[str], bool],
    audience: str,
) -> VerifiedToken:
    """Steps (4)-(10) of :func:`verify_token` on claims whose signature ``parse_token`` has
    checked: everything that depends on the time, the job and its revocations."""
    check_claim_types(claims)
    at = epoch(now)
    if at > claims["exp"] + CLOCK_SKEW_SECONDS:
        raise InvalidToken("TOKEN_EXPIRED", f"expired at {claims['exp']}")
    if claims["iat"] > at + CLOCK_SKEW_SECONDS:
        raise InvalidToken("TOKEN_NOT_YET_VALID", f"issued at {claims['iat']}")
    if is_revoked(claims["jti"]):
        raise InvalidToken("TOKEN_REVOKED", claims["jti"])
    if claims["mission_id"] != job_id:
        raise InvalidToken("TOKEN_WRONG_JOB", "mission_id is another job")
    if claims["policy_hash_b64u"] != policy_hash_b64u:
        raise InvalidToken("TOKEN_WRONG_POLICY", "policy hash is not the pinned WPC")
    if claims["token_scope_hash_b64u"] != token_scope_hash(claims):
        raise InvalidToken("TOKEN_SCOPE_HASH_MISMATCH", "token_scope_hash_b64u")
    aud = claims["aud"]
    if audience not in ([aud] if isinstance(aud, str) else aud):
        raise InvalidToken("TOKEN_WRONG_AUDIENCE", audience)
    return VerifiedToken(claims)


def revocation_record(
    claims: Mapping[str, Any], reason: str, signer: Signer, now: datetime
) -> dict[str, Any]:
    """A signed record that the token ``claims['jti']`` was revoked at ``now``."""
    payload = {
        "revocation_version": "1",
        "jti": claims["jti"],
        "mission_id": claims["mission_id"],
        "policy_hash_b64u": claims["policy_hash_b64u"],
        "token_scope_hash_b64u": claims["token_scope_hash_b64u"],
        "reason": reason,
        "revoked_at": iso_ms(now),
    }
    return sign_envelope(REVOCATION_TYPE, payload, signer, now)
