"""The small synchronous HTTP client MSAL is given (its ``http_client`` parameter).

MSAL accepts only an https authority. In production this client passes MSAL's requests through
unchanged. When the configured authority is plain http on loopback (tests, the simulated
tenant), MSAL is given ``https://<host:port>/<tenant>`` and this client sends those requests to
``http://<host:port>`` instead, so the same MSAL code path runs everywhere.

Requests to any host other than the authority are refused: MSAL never needs one (instance and
region discovery are off), and the client secret must not travel anywhere else.

MSAL's result for a refused token request is the answer's JSON body, without its HTTP status:
``status_of`` finds it again by the body's ``trace_id`` (Entra puts one in every error
answer), for the last ``STATUSES_KEPT`` refusals; also when MSAL replays a refusal it cached.

MSAL's interface (``msal/oauth2cli/http.py``): ``get(url, params=, headers=, **kw)`` and
``post(url, params=, data=, headers=, **kw)``; ``data`` is a dict (form-encode it) or a string;
responses expose ``status_code``, ``text``, ``headers`` and ``raise_for_status()``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from adapters.bounded import Bounded
from adapters.loopback import is_loopback_http

STATUSES_KEPT = 64


class AuthorityHTTPError(OSError):
    """The authority answered with an HTTP error status (raised by ``raise_for_status``)."""


class MsalResponse:
    """A requests-like response: what MSAL reads from a token or discovery call."""

    def __init__(self, status_code: int, text: str, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = dict(headers)

    def json(self) -> Any:
        return json.loads(self.text)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise AuthorityHTTPError(f"authority answered HTTP {self.status_code}")


class MsalHttpClient:
    """Sends MSAL's requests to the configured authority only, rerouted to loopback if needed."""

    def __init__(self, authority_base_url: str, timeout: float) -> None:
        base = urlsplit(authority_base_url)
        self._netloc = base.netloc
        self._scheme = base.scheme
        self._timeout = timeout
        # Loopback must never go through a proxy taken from the environment.
        handlers = [urllib.request.ProxyHandler({})] if is_loopback_http(authority_base_url) else []
        self._opener = urllib.request.build_opener(*handlers)
        self._statuses: Bounded[str, int] = Bounded(STATUSES_KEPT)  # refusal trace_id: status
        self._lock = threading.Lock()  # MSAL calls from worker threads

    @property
    def msal_authority_host(self) -> str:
        """The https origin MSAL is told about (the real one, or the loopback one)."""
        return f"https://{self._netloc}"

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, headers: Any = None, **_: Any
    ) -> MsalResponse:
        return self._send("GET", url, params, None, headers)

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Any = None,
        **_: Any,
    ) -> MsalResponse:
        body = urlencode(data) if isinstance(data, Mapping) else (data or "")
        return self._send("POST", url, params, body.encode("utf-8"), headers)

    def close(self) -> None:
        """Nothing to release: each call opens and closes its own connection."""

    def status_of(self, result: Any) -> int | None:
        """The HTTP status of the refusal MSAL returned as ``result`` (None: not seen)."""
        trace = result.get("trace_id") if isinstance(result, dict) else None
        with self._lock:
            return self._statuses.get(trace) if isinstance(trace, str) else None

    def _note(self, response: MsalResponse) -> MsalResponse:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                return response
            trace = body.get("trace_id") if isinstance(body, dict) else None
            if isinstance(trace, str):
                with self._lock:
                    self._statuses.keep(trace, response.status_code)
        return response

    def route(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        """The URL actually requested for MSAL's ``url``; refuses any other host."""
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.netloc != self._netloc:
            raise AuthorityHTTPError("MSAL asked for a host other than the configured authority")
        query = "&".join(q for q in (parts.query, urlencode(params or {})) if q)
        return urlunsplit((self._scheme, parts.netloc, parts.path, query, ""))

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        headers: Any,
    ) -> MsalResponse:
        target = self.route(url, params)
        request = urllib.request.Request(  # noqa: S310 - scheme checked by route()
            target, data=body, method=method, headers=dict(headers or {})
        )
        if body is not None and not request.has_header("Content-type"):
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self._opener.open(request, timeout=self._timeout) as resp:
                return MsalResponse(resp.status, _text(resp.read()), dict(resp.headers.items()))
        except urllib.error.HTTPError as err:
            with err:
                answer = MsalResponse(err.code, _text(err.read()), dict(err.headers.items()))
            return self._note(answer)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
