"""App-only access tokens for Microsoft Graph through MSAL.

One ``ConfidentialClientApplication`` per process and configuration (MSAL's guidance: its token
cache lives in the instance). MSAL is synchronous and its constructor already performs OpenID
discovery over the network, so both construction and ``acquire_token_for_client`` run in a
worker thread. Every failure becomes a ``GraphError`` whose text never contains the secret.

A token is renewed before MSAL would renew it in two cases only, both by dropping it from
MSAL's cache (``forget``: ``acquire_token_for_client`` has no ``force_refresh``, it answers
from the cache until the token is gone): Graph refused it (401), or Graph denied a request
for a permission the token was issued without (403 ``Authorization_RequestDenied``; a token
carries the application permissions of the moment it was issued, its ``roles`` claim, so one
restored later reaches the app only with a new token). The second is bounded: a token this
source received less than ``FRESH_S`` ago is not dropped for a 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msal  # type: ignore[import-untyped]

from adapters.graph.config import GraphConfig
from adapters.graph.msal_http import MsalHttpClient
from engine.errors import GraphError

_AADSTS = re.compile(r"AADSTS\d+")
KEEP_MARGIN_S = 300.0  # MSAL renews a cached token this long before it expires
# A token received less than this long ago is not dropped for a 403: it already carries the
# permissions the app had then. 60 s is what Entra asks a throttled client-credentials
# caller to wait (429, Retry-After: 60) and how long MSAL replays a refused (400) token
# request: so a permission really missing costs at most one more token request a minute per
# process, and one restored is used within a minute of the first 403 after that.
FRESH_S = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Msal:
    app: Any  # msal.ConfidentialClientApplication (untyped)
    http: MsalHttpClient  # what it sends through: it knows the token endpoint's statuses


_APPS: dict[str, _Msal] = {}
_APPS_LOCK = threading.Lock()


class TokenSource:
    """Hands out a bearer token for Graph, cached by MSAL until shortly before it expires.

    The last token is also kept here, until MSAL itself would renew it (half its lifetime,
    and never within 5 minutes of its end): most Graph calls then cost no trip to MSAL's
    worker threads, which under load took longer than the call (issue 19)."""

    def __init__(
        self,
        config: GraphConfig,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = _utc_now,  # what FRESH_S is measured on
    ) -> None:
        self._config = config
        self._monotonic = monotonic
        self._clock = clock
        self._kept: tuple[str, float] | None = None  # the token, and when to stop using it
        self._newest: tuple[str, datetime] | None = None  # the last token received, and when
        self._renewing = asyncio.Lock()

    async def token(self) -> str:
        kept = self._kept
        if kept is not None and self._monotonic() < kept[1]:
            return kept[0]
        started = self._monotonic()
        token, lifetime = await self._acquire()
        if lifetime is not None:
            self._kept = (token, started + min(lifetime / 2, lifetime - KEEP_MARGIN_S))
        if self._newest is None or self._newest[0] != token:
            self._newest = (token, self._clock())
        return token

    async def _acquire(self) -> tuple[str, float | None]:
        """A token from MSAL (its cache, or the token endpoint), and its lifetime if stated."""
        msal_app = await asyncio.to_thread(_app_for, self._config)
        try:
            result = await asyncio.to_thread(
                msal_app.app.acquire_token_for_client, scopes=[self._config.scope]
            )
        except Exception as exc:  # MSAL raises assorted types on transport failures
            raise GraphError(
                "TokenEndpointUnavailable", "the token endpoint could not be reached"
            ) from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(token, str):
            lifetime = result.get("expires_in")
            return token, float(lifetime) if isinstance(lifetime, int | float) else None
        raise token_refusal(result, self._config, msal_app.http.status_of(result))

    async def forget(self, token: str) -> None:
        """Drop a token Graph refused (revoked, expired early) so the next call gets a new one."""
        if self._kept is not None and self._kept[0] == token:
            self._kept = None
        msal_app = await asyncio.to_thread(_app_for, self._config)
        await asyncio.to_thread(_forget, msal_app.app, token)

    async def renewed_after_denial(self, token: str) -> str | None:
        """A newer token to resend a request Graph denied with ``token`` for lack of a
        permission (403 ``Authorization_RequestDenied``), or None when a newer one cannot
        carry more: ``token`` was received less than ``FRESH_S`` ago. Requests denied at
        once share one renewal: a token already replaced is not renewed again."""
        async with self._renewing:
            newest = self._newest
            if newest is not None and newest[0] != token:
                return await self.token()  # renewed meanwhile, by another request
            if newest is not None and 0 <= (self._clock() - newest[1]).total_seconds() < FRESH_S:
                return None
            await self.forget(token)
            return await self.token()


def token_refusal(result: Any, config: GraphConfig, status: int | None = None) -> GraphError:
    """The error for an MSAL error result: the token endpoint's HTTP status (0 when it is not
    known), its code and AADSTS number; never the secret, nor the free text of the answer."""
    result = result if isinstance(result, dict) else {}
    code = str(result.get("error") or "token_error")
    found = _AADSTS.search(str(result.get("error_description") or ""))
    detail = f"{found.group(0)}: " if found else ""
    answered = f"HTTP {status}" if status else "HTTP status unknown"
    message = scrub(f"{detail}the token endpoint refused a token ({answered})", config)
    return GraphError(code, message, status=status or 0, request_id=result.get("correlation_id"))


def scrub(text: str, config: GraphConfig) -> str:
    """Defence in depth: remove the secret from any text that might reach a person or a log."""
    secret = config.client_secret
    return text.replace(secret, "[redacted]") if secret else text


def _forget(app: Any, token: str) -> None:
    cache = app.token_cache
    kind = msal.TokenCache.CredentialType.ACCESS_TOKEN
    stale = [item for item in cache.search(kind) if item.get("secret") == token]
    for item in stale:  # removed after the search: search() holds the cache lock
        cache.remove_at(item)


def _app_for(config: GraphConfig) -> _Msal:
    key = _app_key(config)
    with _APPS_LOCK:
        msal_app = _APPS.get(key)
        if msal_app is None:
            msal_app = _build_app(config)
            _APPS[key] = msal_app
        return msal_app


def _app_key(config: GraphConfig) -> str:
    material = "\n".join(
        [
            config.authority_base_url,
            config.tenant_id,
            config.client_id,
            config.client_secret or "",
            str(config.certificate or ""),
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _build_app(config: GraphConfig) -> _Msal:
    http = MsalHttpClient(config.authority_base_url, config.retry.request_timeout)
    credential = _credential(config)
    try:
        app = msal.ConfidentialClientApplication(
            config.client_id,
            client_credential=credential,
            authority=f"{http.msal_authority_host}/{config.tenant_id}",
            http_client=http,
            instance_discovery=False,  # no call to a Microsoft host other than the authority
            validate_authority=False,
        )
    except Exception as exc:  # discovery failure: ValueError, OSError, our AuthorityHTTPError
        raise GraphError(
            "AuthorityUnavailable",
            scrub(f"OpenID discovery failed for tenant {config.tenant_id}", config),
        ) from exc
    return _Msal(app, http)


def _credential(config: GraphConfig) -> Any:
    if config.client_secret is not None:
        return config.client_secret
    cert = config.certificate
    assert cert is not None  # GraphConfig guarantees exactly one credential
    try:
        key = cert.private_key_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphError("CertificateUnreadable", "the certificate key file is unreadable") from exc
    return {"private_key": key, "thumbprint": cert.thumbprint.replace(":", "")}
