"""The Microsoft Graph HTTP client: aiohttp, MSAL bearer tokens, bounded retries.

Rules, in order of importance:

1. A write is never resent blindly. When its answer is lost (dropped connection, timeout,
   502/504) the client raises ``ResponseLost`` and the caller reads back before deciding.
   A connection that was never established is safe to retry: nothing was sent.
2. 429 honours ``Retry-After``; 429 without it, 503 (any method) and 502/504 (reads) back off
   exponentially with jitter. Everything stays inside ``RetryPolicy.total_budget``: a wait
   that would cross it gives up at once with the last ``GraphError``.
3. Conditional Access requests are paced (1 request/s per tenant by default): across every
   replica when the client is given the store's shared ``PacingSlots``, else per process.
   The reporting API's (``/auditLogs/``: 5 requests per 10 s per app and tenant) are paced
   the same way, in a bucket of their own.
4. Paging links are followed only under the configured Graph base URL, so the bearer token
   is never sent to another host.
5. A request refused at the door for its token is resent once with a newer one: 401
   ``InvalidAuthenticationToken`` (the token), 403 ``Authorization_RequestDenied`` (a
   permission the token was issued without; not when it is under ``auth.FRESH_S`` old).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp

from adapters.graph.auth import TokenSource
from adapters.graph.config import GraphConfig
from adapters.graph.failures import ResponseLost, error_from_response, request_id_of
from adapters.graph.pacer import Pacer, RequestPacer, SharedPacer, wall_clock
from adapters.graph.retry import is_lost_outcome, is_retriable
from adapters.retry import RetryLater, retry_after_of, retry_call
from engine.errors import GraphError
from engine.ports import PacingSlots

log = logging.getLogger(__name__)

CA_PREFIX = "/identity/conditionalAccess/"
REPORTS_PREFIX = "/auditLogs/"
_MAX_PAGES = 100
# Failures that happen before a byte of the request left: resending cannot duplicate it.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


@dataclass
class Writes:
    """Whether a write (any request but a GET) was handed to a connection while this was
    the task's current ``WRITES``: until then, a cancelled caller knows nothing left."""

    left: bool = False


WRITES: ContextVar[Writes | None] = ContextVar("graph_writes", default=None)


@dataclass(frozen=True)
class GraphResponse:
    status: int
    body: Mapping[str, Any]
    request_id: str | None


@dataclass(frozen=True)
class _Request:
    """One logical call, the same for each of its attempts."""

    method: str
    url: str
    path: str  # the part after the Graph base URL
    params: Mapping[str, str] | None
    body: Mapping[str, Any] | None
    idempotent: bool
    correlation: str  # client-request-id, shared by the attempts


class GraphClient:
    """One per process and tenant; ``async with`` it, or call ``close()``."""

    def __init__(
        self,
        config: GraphConfig,
        *,
        tokens: TokenSource | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,  # what the pacers and budget measure
        pacing: PacingSlots | None = None,
        pacing_clock: Callable[[], datetime] = wall_clock,
        clock: Callable[[], datetime] = wall_clock,  # how old a token is (auth.FRESH_S)
    ) -> None:
        self.config = config
        self._tokens = tokens or TokenSource(config, clock=clock)
        self._sleep = sleep
        self._rand = rand
        self._monotonic = monotonic
        paced = partial(_pacer, sleep=sleep, monotonic=monotonic, slots=pacing, clock=pacing_clock)
        self._ca_pacer = paced(ca_bucket(config.tenant_id), config.retry.ca_interval)
        self._reports_pacer = paced(reports_bucket(config.tenant_id), config.retry.reports_interval)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> GraphResponse:
        return await self._call("GET", self._url(path), params, None, idempotent=True)

    async def get_all(
        self, path: str, params: Mapping[str, str] | None = None, *, max_pages: int = _MAX_PAGES
    ) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` under our base URL."""
        url, items = self._url(path), list[dict[str, Any]]()
        for _ in range(max_pages):
            page = await self._call("GET", url, params, None, idempotent=True)
            items.extend(v for v in page.body.get("value", []) if isinstance(v, dict))
            next_link = page.body.get("@odata.nextLink")
            if not isinstance(next_link, str):
                return items
            url, params = self._checked_next_link(next_link), None
        raise GraphError("TooManyPages", f"more than {max_pages} pages at {path}")

    async def post(
        self, path: str, body: Mapping[str, Any] | None, *, idempotent: bool = False
    ) -> GraphResponse:
        return await self._call("POST", self._url(path), None, body, idempotent=idempotent)

    async def patch(
        self, path: str, body: Mapping[str, Any], *, idempotent: bool = False
    ) -> GraphResponse:
        return await self._call("PATCH", self._url(path), None, body, idempotent=idempotent)

    def _url(self, path: str) -> str:
        if not path.startswith("/") or ".." in path or "?" in path:
            raise GraphError("InvalidPath", "refusing a malformed Graph path")
        return self.config.graph_root + path

    def _checked_next_link(self, link: str) -> str:
        if not link.startswith(self.config.graph_root + "/"):
            raise GraphError("UntrustedNextLink", "a paging link left the Graph base URL")
        return link

    async def _call(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        *,
        idempotent: bool,
    ) -> GraphResponse:
        path = url[len(self.config.graph_root) :]
        request = _Request(method, url, path, params, body, idempotent, str(uuid.uuid4()))
        attempts = 0

        async def attempt() -> GraphResponse:
            nonlocal attempts
            attempts += 1
            return await self._attempt(request)

        def announce(exc: BaseException, delay: float) -> None:
            code = exc.error.code if isinstance(exc, RetryLater) else type(exc).__name__
            log.info("graph %s %s: %s, retrying in %.2fs", method, path, code, delay)

        try:
            return await retry_call(
                attempt,
                self.config.retry.backoff,
                sleep=self._sleep,
                clock=self._monotonic,
                rand=self._rand,
                before_sleep=announce,
            )
        except RetryLater as exc:
            raise _gave_up(exc.error, attempts) from exc.error

    async def _attempt(self, request: _Request) -> GraphResponse:
        """One send: a response, or ``RetryLater`` with the failure and the server's wait."""
        method, path, idempotent = request.method, request.path, request.idempotent
        try:
            status, text, headers = await self._send(request)
        except _NOT_SENT as exc:
            raise RetryLater(_unreachable(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            if not idempotent:
                raise ResponseLost(method, path) from exc
            raise RetryLater(_unreachable(exc)) from exc
        if status < 400:
            return GraphResponse(status, _json_body(text), request_id_of(headers))
        error = error_from_response(status, text, headers)
        if is_lost_outcome(status, idempotent):
            raise ResponseLost(method, path, status) from error
        if not is_retriable(status, idempotent):
            raise error
        asked = retry_after_of(headers, datetime.now(UTC)) if status == 429 else None
        raise RetryLater(error, asked)

    async def _send(self, request: _Request) -> tuple[int, str, Mapping[str, str]]:
        """One request, resent at most once with a newer token (rule 5)."""
        token = await self._tokens.token()
        answer = await self._request(request, token)
        code = _code_of(answer[1]) if answer[0] in (401, 403) else None
        if answer[0] == 401 and code == "InvalidAuthenticationToken":
            # Refused at the door, so nothing was applied: renew the token and send once more.
            await self._tokens.forget(token)
            renewed: str | None = await self._tokens.token()
        elif answer[0] == 403 and code == "Authorization_RequestDenied":
            # Denied before anything was done (Graph authorizes a request before it runs it),
            # so a resend cannot apply anything twice. A token keeps the permissions of its
            # issue: one restored since reaches us with a newer token only.
            renewed = await self._tokens.renewed_after_denial(token)
            if renewed is not None:
                what = (request.method, request.path, code)
                log.info("graph %s %s: 403 %s, resending once with a newer token", *what)
        else:
            return answer
        return answer if renewed is None else await self._request(request, renewed)

    async def _request(self, request: _Request, token: str) -> tuple[int, str, Mapping[str, str]]:
        if request.path.startswith(CA_PREFIX):
            await self._ca_pacer.wait()  # right before sending: token fetches take varying time
        elif request.path.startswith(REPORTS_PREFIX):
            await self._reports_pacer.wait()
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "client-request-id": request.correlation,
        }
        if request.method != "GET" and (writes := WRITES.get()) is not None:
            writes.left = True  # after every wait: from here on it may reach the tenant
        async with self._open().request(
            request.method, request.url, params=request.params, json=request.body, headers=headers
        ) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.config.retry.request_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session


def ca_bucket(tenant_id: str) -> str:
    """The pacing bucket of a tenant's Conditional Access requests (shared by replicas)."""
    return f"graph:{tenant_id}:conditional-access"


def reports_bucket(tenant_id: str) -> str:
    """The pacing bucket of a tenant's reporting API requests (audit and sign-in logs)."""
    return f"graph:{tenant_id}:reports"


def _pacer(
    bucket: str,
    interval: float,
    *,
    sleep: Callable[[float], Awaitable[None]],
    monotonic: Callable[[], float],
    slots: PacingSlots | None,
    clock: Callable[[], datetime],
) -> RequestPacer:
    """Paced across replicas through the store's ``slots`` when given, else in this process."""
    local = Pacer(interval, clock=monotonic, sleep=sleep)
    if slots is None:
        return local
    return SharedPacer(slots, bucket, interval, local, clock=clock, sleep=sleep)


def _json_body(text: str) -> Mapping[str, Any]:
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise GraphError("InvalidResponse", "Graph answered with a body that is not JSON") from exc
    return doc if isinstance(doc, dict) else {"value": doc}


def _code_of(text: str) -> str:
    return error_from_response(0, text, {}).code


def _unreachable(exc: BaseException) -> GraphError:
    return GraphError("ServiceUnreachable", f"Graph could not be reached ({type(exc).__name__})")


def _gave_up(error: GraphError, attempts: int) -> GraphError:
    message = f"{error.message} (gave up after {attempts} attempt{'s' * (attempts > 1)})"
    return GraphError(error.code, message, status=error.status, request_id=error.request_id)
