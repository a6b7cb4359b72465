"""``RegistryClient``: fetch a WPC by hash and trust it only after checking it ourselves.

A fetched envelope must (1) hash to the hash we asked for (JCS of its payload) and (2) verify,
signed by a key in our allowlist; only then is it cached. The registry is never trusted to
have checked anything. Transport failures and registry errors are ``RegistryError``; an answer
that fails a check is ``VerificationError`` with the reason code.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import aiohttp

from adapters.httpbody import CHUNK, read_capped
from engine.canonical import strict_loads
from engine.encoding import is_hash_b64u
from engine.errors import InputError, RegistryError, TooLarge, VerificationError
from engine.wpc import MAX_POLICY_BYTES, Policy, policy_hash, verify_wpc

# A served envelope is re-serialised by the registry (escapes can grow it): allow headroom.
MAX_RESPONSE_BYTES = 2 * MAX_POLICY_BYTES
MAX_ERROR_BYTES = 4096
DEFAULT_TIMEOUT_S = 10.0
MAX_CACHED_POLICIES = 1024  # one per job; the oldest is dropped first


class RegistryClient:
    """Fetch and publish WPC envelopes; verified policies are cached by hash in memory."""

    def __init__(
        self,
        base_url: str,
        allowed_signers: Collection[str],
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._signers = frozenset(allowed_signers)
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._cache: dict[str, Policy] = {}

    async def fetch(self, policy_hash_b64u: str) -> Policy:
        """The verified policy whose JCS hash is ``policy_hash_b64u``.

        Raises VerificationError (HASH_MISMATCH, SIGNER_NOT_ALLOWED, ...) when the answer fails
        a check, RegistryError when the registry cannot be reached or answers an error.
        """
        if not self._signers:
            raise VerificationError("SIGNER_NOT_ALLOWED", "the signer allowlist is empty")
        if not is_hash_b64u(policy_hash_b64u):
            raise InputError("not a policy hash (43 characters of base64url)")
        cached = self._cache.get(policy_hash_b64u)
        if cached is not None:
            return cached
        envelope = await self._get(f"{self._base}/v1/wpc/{policy_hash_b64u}")
        policy = check_fetched(envelope, policy_hash_b64u, self._signers)
        if len(self._cache) >= MAX_CACHED_POLICIES:
            self._cache.pop(next(iter(self._cache)))
        self._cache[policy_hash_b64u] = policy
        return policy

    async def publish(self, envelope: Mapping[str, Any]) -> bool:
        """Publish a signed WPC envelope; True when the registry already had it."""
        expected = _payload_hash(envelope)
        body = json.dumps(envelope, separators=(",", ":"), allow_nan=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        answer = await self._request("POST", f"{self._base}/v1/wpc", body, headers)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("existed"), bool):
            raise RegistryError("BAD_ANSWER", "the registry answered an unexpected shape")
        if answer.get("policy_hash_b64u") != expected:
            raise VerificationError("HASH_MISMATCH", "the registry stored it under another hash")
        return bool(answer["existed"])

    async def _get(self, url: str) -> Any:
        return await self._request("GET", url, None, {})

    async def _request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Any:
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,  # a registry answers here or not at all
                timeout=self._timeout,
            ) as response:
                if response.status >= 300:
                    raise await _refusal(response)
                return strict_loads(await _read_bounded(response, MAX_RESPONSE_BYTES))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RegistryError("UNREACHABLE", f"{method} failed: {type(exc).__name__}") from exc


def check_fetched(envelope: object, wanted: str, allowed_signers: Collection[str]) -> Policy:
    """Steps: (1) the payload's JCS hash is ``wanted``; (2) the envelope verifies and its
    signer is allowed. Does NOT check that the policy fits any job: callers do."""
    payload = envelope.get("payload") if isinstance(envelope, Mapping) else None
    if not isinstance(payload, Mapping):
        raise VerificationError("MALFORMED_ENVELOPE", "the registry answered no envelope")
    try:
        got = policy_hash(payload)
    except InputError as exc:
        raise VerificationError("HASH_MISMATCH", "the payload cannot be hashed") from exc
    if got != wanted:
        raise VerificationError("HASH_MISMATCH", "the registry served another policy")
    return verify_wpc(envelope, allowed_signers)


def _payload_hash(envelope: Mapping[str, Any]) -> str:
    payload = envelope.get("payload")
    if not isinstance(payload, Mapping):
        raise VerificationError("MALFORMED_ENVELOPE", "envelope has no payload object")
    return policy_hash(payload)


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    return await read_capped(response.content.iter_chunked(CHUNK), limit, "registry answer")


async def _refusal(response: aiohttp.ClientResponse) -> Exception:
    """The typed error for a non-2xx answer, from the deny shape when there is one."""
    denied = await _deny_body(response)
    code, message = denied or (f"HTTP_{response.status}", response.reason or "error")
    if response.status == 413:
        return TooLarge(f"the registry refused the size: {message}")
    if response.status in (400, 403) and denied is not None:
        return VerificationError(code, message)
    return RegistryError(code, message, status=response.status)


async def _deny_body(response: aiohttp.ClientResponse) -> tuple[str, str] | None:
    """(code, message) of a ``{"ok": false, "error": {...}}`` answer, else None."""
    try:
        error = strict_loads(await _read_bounded(response, MAX_ERROR_BYTES))["error"]
        code, message = error["code"], error.get("message", "")
    except (InputError, KeyError, TypeError, AttributeError, aiohttp.ClientError):
        return None
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    return code[:64], message[:200]
