"""Authenticating what the Bot Framework channel service sends to ``/api/messages``.

We validate the JWT ourselves (PyJWT) rather than through the Agents SDK's middleware, which
hard-codes its key URLs, checks the issuer only on request, allows 300 s of leeway and accepts
a token without ``exp``. Steps, each refusing with :class:`InboundAuthError`:

(1) an ``Authorization: Bearer`` header; (2) an RS256 header with a ``kid``; (3) the key for
that ``kid`` from the configured OpenID metadata (refetched once, rate-limited, when unknown);
(4) signature, ``aud`` = our app id, ``iss`` in the allowed issuers, ``exp`` and ``nbf``
required and checked with :data:`CLOCK_SKEW_SECONDS`; then, with the activity body,
(5) the key's endorsements name the activity's channel; (6) the token's ``serviceurl`` claim
equals the activity's ``serviceUrl``, so replies go only where the token says.

Does NOT check who the user in the activity is: that is the job service's business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from adapters.loopback import is_loopback_http
from adapters.teams.config import TeamsConfig
from engine.canonical import strict_loads
from engine.errors import BreakGlassError, InputError

log = logging.getLogger("breakglass.teams.auth")

CLOCK_SKEW_SECONDS = 120  # the channel's clock and ours may differ this much
KEYS_TTL_SECONDS = 24 * 3600  # the Bot Framework asks to refresh keys about daily
MIN_REFETCH_SECONDS = 60  # an unknown kid refetches at most this often
MAX_HEADER_CHARS = 8192
MAX_METADATA_BYTES = 256 * 1024
FETCH_TIMEOUT_SECONDS = 10.0


class InboundAuthError(InputError):
    """An inbound request failed authentication; ``reason`` goes to the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__("unauthorized")
        self.reason = reason


class KeysUnavailable(BreakGlassError):
    """The OpenID metadata or its keys could not be fetched; nothing can be authenticated."""


@dataclass(frozen=True)
class SigningKey:
    key: jwt.PyJWK
    endorsements: tuple[str, ...] | None  # None: the key names no channels


@dataclass(frozen=True)
class Verified:
    """The claims of a token that passed steps (1)-(4), and the key that signed it."""

    claims: Mapping[str, Any]
    key: SigningKey


class OpenIdKeys:
    """Signing keys behind an OpenID metadata URL, cached for a day."""

    def __init__(self, metadata_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.metadata_url = metadata_url
        self.clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, kid: str) -> SigningKey | None:
        async with self._lock:  # concurrent requests share one refetch
            if self._due(kid, self.clock()):
                await self._refresh()
        return self._keys.get(kid)

    def _due(self, kid: str, now: float) -> bool:
        if self._fetched_at is None or now - self._fetched_at > KEYS_TTL_SECONDS:
            return True
        return kid not in self._keys and now - self._fetched_at > MIN_REFETCH_SECONDS

    async def _refresh(self) -> None:
        now = self.clock()
        try:
            self._keys = await self._fetch_keys()
        except KeysUnavailable:
            if not self._keys:
                raise
            # Genuine keys we already hold beat no keys; try again in a minute.
            log.warning("teams: signing keys not refreshed; the cached ones stay in use")
            self._fetched_at = now - KEYS_TTL_SECONDS + MIN_REFETCH_SECONDS
            return
        self._fetched_at = now

    async def _fetch_keys(self) -> dict[str, SigningKey]:
        metadata = await self._fetch(self.metadata_url)
        jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, Mapping) else None
        if not isinstance(jwks_uri, str) or not _safe_url(jwks_uri):
            raise KeysUnavailable("OpenID metadata has no usable jwks_uri")
        return _parse_keys(await self._fetch(jwks_uri))

    async def _fetch(self, url: str) -> Any:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise KeysUnavailable(f"key document answered {response.status}")
                body = await _read_limited(response.content, MAX_METADATA_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KeysUnavailable(f"key document unreachable: {type(exc).__name__}") from exc
        try:
            return strict_loads(body, max_bytes=MAX_METADATA_BYTES, floats=True)
        except InputError as exc:
            raise KeysUnavailable("key document is not JSON") from exc


async def _read_limited(stream: aiohttp.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while chunk := await stream.read(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise KeysUnavailable("key document is too large")
    return bytes(body)


def _safe_url(url: str) -> bool:
    return urlsplit(url).scheme == "https" or is_loopback_http(url)


def _parse_keys(document: Any) -> dict[str, SigningKey]:
    keys: dict[str, SigningKey] = {}
    entries = document.get("keys") if isinstance(document, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        try:
            key = jwt.PyJWK(dict(entry), algorithm="RS256")
        except jwt.PyJWTError:
            continue  # one malformed key must not hide the others
        endorsements = entry.get("endorsements")
        named = tuple(str(e) for e in endorsements) if isinstance(endorsements, list) else None
        if isinstance(kid, str) and kid:
            keys[kid] = SigningKey(key, named)
    return keys


class InboundAuth:
    def __init__(self, config: TeamsConfig, keys: OpenIdKeys) -> None:
        self.config = config
        self.keys = keys

    async def verify_header(self, header: str | None) -> Verified:
        """Steps (1)-(4): the token alone, before the body is read."""
        token = _bearer(header)
        kid = _kid(token)
        key = await self.keys.get(kid)
        if key is None:
            raise InboundAuthError("UNKNOWN_SIGNING_KEY")
        return Verified(self._decode(token, key), key)

    def _decode(self, token: str, key: SigningKey) -> Mapping[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.config.app_id,
                issuer=list(self.config.allowed_issuers),
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "nbf", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InboundAuthError(f"TOKEN_REJECTED:{type(exc).__name__}") from None
        return claims

    def check_activity(self, verified: Verified, activity: Mapping[str, Any]) -> None:
        """Steps (5)-(6): the token must fit the activity it came with."""
        channel = activity.get("channelId")
        endorsed = verified.key.endorsements
        if endorsed is not None and channel not in endorsed:
            raise InboundAuthError("CHANNEL_NOT_ENDORSED")
        claimed = verified.claims.get("serviceurl")
        actual = activity.get("serviceUrl")
        if not isinstance(claimed, str) or not isinstance(actual, str):
            raise InboundAuthError("SERVICE_URL_MISSING")
        if _normal_url(claimed) != _normal_url(actual):
            raise InboundAuthError("SERVICE_URL_MISMATCH")


def _bearer(header: str | None) -> str:
    if not header:
        raise InboundAuthError("NO_TOKEN")
    if len(header) > MAX_HEADER_CHARS:
        raise InboundAuthError("TOKEN_TOO_LONG")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        raise InboundAuthError("MALFORMED_AUTHORIZATION")
    return token


def _kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InboundAuthError("MALFORMED_TOKEN") from None
    if header.get("alg") != "RS256":
        raise InboundAuthError("ALGORITHM_NOT_ALLOWED")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InboundAuthError("NO_KEY_ID")
    return kid


def _normal_url(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")
