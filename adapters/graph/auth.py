"""App-only access tokens for Microsoft Graph through MSAL.

One ``ConfidentialClientApplication`` per process and configuration (MSAL's guidance: its token
cache lives in the instance). MSAL is synchronous and its constructor already performs OpenID
discovery over the network, so both construction and ``acquire_token_for_client`` run in a
worker thread. Every failure becomes a ``GraphError`` whose text never contains the secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import msal  # type: ignore[import-untyped]

from adapters.graph.config import GraphConfig
from adapters.graph.msal_http import MsalHttpClient
from engine.errors import GraphError

_APPS: dict[str, Any] = {}
_APPS_LOCK = threading.Lock()
_AADSTS = re.compile(r"AADSTS\d+")
KEEP_MARGIN_S = 300.0  # MSAL renews a cached token this long before it expires


class TokenSource:
    """Hands out a bearer token for Graph, cached by MSAL until shortly before it expires.

    The last token is also kept here, until MSAL itself would renew it (half its lifetime,
    and never within 5 minutes of its end): most Graph calls then cost no trip to MSAL's
    worker threads, which under load took longer than the call (issue 19)."""

    def __init__(
        self, config: GraphConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._monotonic = monotonic
        self._kept: tuple[str, float] | None = None  # the token, and when to stop using it

    async def token(self) -> str:
        kept = self._kept
        if kept is not None and self._monotonic() < kept[1]:
            return kept[0]
        started = self._monotonic()
        token, lifetime = await self._acquire()
        if lifetime is not None:
            self._kept = (token, started + min(lifetime / 2, lifetime - KEEP_MARGIN_S))
        return token

    async def _acquire(self) -> tuple[str, float | None]:
        """A token from MSAL (its cache, or the token endpoint), and its lifetime if stated."""
        app = await asyncio.to_thread(_app_for, self._config)
        try:
            result = await asyncio.to_thread(
                app.acquire_token_for_client, scopes=[self._config.scope]
            )
        except Exception as exc:  # MSAL raises assorted types on transport failures
            raise GraphError(
                "TokenEndpointUnavailable", "the token endpoint could not be reached"
            ) from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(token, str):
            lifetime = result.get("expires_in")
            return token, float(lifetime) if isinstance(lifetime, int | float) else None
        raise token_refusal(result, self._config)

    async def forget(self, token: str) -> None:
        """Drop a token Graph refused (revoked, expired early) so the next call gets a new one."""
        if self._kept is not None and self._kept[0] == token:
            self._kept = None
        app = await asyncio.to_thread(_app_for, self._config)
        await asyncio.to_thread(_forget, app, token)


def token_refusal(result: Any, config: GraphConfig) -> GraphError:
    """The error for an MSAL error result: its code and AADSTS number, never the secret."""
    result = result if isinstance(result, dict) else {}
    code = str(result.get("error") or "token_error")
    found = _AADSTS.search(str(result.get("error_description") or ""))
    detail = f"{found.group(0)}: " if found else ""
    message = scrub(f"{detail}the token endpoint refused the app credentials", config)
    return GraphError(code, message, status=401, request_id=result.get("correlation_id"))


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


def _app_for(config: GraphConfig) -> Any:
    key = _app_key(config)
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is None:
            app = _build_app(config)
            _APPS[key] = app
        return app


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


def _build_app(config: GraphConfig) -> Any:
    http = MsalHttpClient(config.authority_base_url, config.retry.request_timeout)
    credential = _credential(config)
    try:
        return msal.ConfidentialClientApplication(
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
