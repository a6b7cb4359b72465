"""Checks of an Entra ID token, in order; each failure is a ``SignInRejected``.

(1) the header names RS256 and a key of the tenant's JWKS; (2) the signature verifies with
that key; (3) ``iss`` is the tenant's issuer and ``tid`` the tenant; (4) ``aud`` is our
client; (5) ``nonce`` is the one this sign-in was begun with; (6) ``iat``/``exp`` hold at
``now`` (our clock, with a named skew). What remains (``oid`` is the approver, ``acrs``,
``auth_time`` fresh, not replayed) is policy and lives in ``engine.stepup``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt

from engine.encoding import sha256_b64u
from engine.errors import AdapterError
from engine.stepup import StepUpEvidence

CLOCK_SKEW = timedelta(minutes=2)
_REQUIRED = ["iss", "aud", "exp", "iat", "nonce", "oid", "tid", "auth_time"]


class SignInRejected(AdapterError):
    """The sign-in did not yield a token we accept; ``detail`` says which check failed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SigningKeys(Protocol):
    async def key_for(self, token: str) -> Any:
        """The public key the token's ``kid`` names, or SignInRejected."""
        ...


class JwksKeys:
    """The tenant's signing keys, fetched (and cached) by PyJWT's JWKS client."""

    def __init__(self, jwks_url: str) -> None:
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=10)

    async def key_for(self, token: str) -> Any:
        try:
            found = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError as exc:
            raise SignInRejected(f"no signing key for the ID token ({exc})") from exc
        except jwt.PyJWTError as exc:
            raise SignInRejected("the ID token is malformed") from exc
        return found.key


async def verify_id_token(
    token: str,
    keys: SigningKeys,
    *,
    issuer: str,
    audience: str,
    tenant_id: str,
    nonce: str,
    now: datetime,
) -> Mapping[str, Any]:
    """The verified claims of ``token``, or SignInRejected naming the failed check."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignInRejected("the ID token is malformed") from exc
    if header.get("alg") != "RS256":
        raise SignInRejected("the ID token is not signed with RS256")
    key = await keys.key_for(token)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": _REQUIRED,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise SignInRejected("the ID token is for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise SignInRejected("the ID token is from another issuer") from exc
    except jwt.PyJWTError as exc:
        raise SignInRejected(f"the ID token failed verification ({type(exc).__name__})") from exc
    _check_claims(claims, tenant_id=tenant_id, nonce=nonce, now=now)
    return claims


def _check_claims(claims: Mapping[str, Any], *, tenant_id: str, nonce: str, now: datetime) -> None:
    if str(claims["tid"]).lower() != tenant_id.lower():
        raise SignInRejected("the ID token is from another tenant")
    if not hmac.compare_digest(str(claims["nonce"]), nonce):
        raise SignInRejected("the ID token's nonce is not this sign-in's")
    stamp = now.timestamp()
    skew = CLOCK_SKEW.total_seconds()
    if not _number(claims["iat"]) - skew <= stamp < _number(claims["exp"]) + skew:
        raise SignInRejected("the ID token is expired or not yet valid")
    if not isinstance(claims["oid"], str) or not claims["oid"]:
        raise SignInRejected("the ID token names no user")


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignInRejected("the ID token has a malformed time claim")
    return float(value)


def evidence_of(token: str, claims: Mapping[str, Any], plan_hash: str) -> StepUpEvidence:
    """What the receipt keeps of a verified token: its hash and the claims that matter."""
    return StepUpEvidence(
        subject=str(claims["oid"]),
        acrs=_strings(claims.get("acrs")),
        amr=_strings(claims.get("amr")),
        auth_time=int(_number(claims["auth_time"])),
        issuer=str(claims["iss"]),
        token_hash_b64u=sha256_b64u(token.encode()),
        plan_hash=plan_hash,
    )


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v)[:64] for v in value[:16])
