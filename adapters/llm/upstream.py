"""The model upstream port and its HTTP implementation (any OpenAI-compatible base URL).

The proxy hands an upstream the exact request bytes it hashed; the upstream sends exactly
those bytes and yields the response bytes as they arrive, never re-encoding either. It also
marks a ``Delivery`` once the bytes may have reached the upstream: from then on the call is
receipted, whether or not an answer comes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Protocol

import aiohttp

from engine.errors import ModelError

CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class UpstreamReply:
    """An upstream's answer: status, content type, its body as chunks as they arrive, and
    its headers (``Retry-After`` and the rate-limit headers among them)."""

    status: int
    content_type: str
    chunks: AsyncGenerator[bytes, None]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_stream(self) -> bool:
        return self.status == 200 and self.content_type == "text/event-stream"


@dataclass
class Delivery:
    """How far one request got. ``sent`` is set once its bytes were handed to the connection:
    the upstream may have them (and act on them) even if no answer ever comes."""

    sent: bool = False


class ModelUpstream(Protocol):
    """Sends one ``/chat/completions`` body, marking ``delivery`` once it may have left.
    Leaving the context closes the upstream connection, so a stream the caller stops
    reading is cut at the upstream too. Raises ModelError when the upstream cannot be
    reached, gives no answer in time or breaks mid-body."""

    def send(
        self, body: bytes, delivery: Delivery
    ) -> AbstractAsyncContextManager[UpstreamReply]: ...

    async def close(self) -> None: ...


class LocalModel(Protocol):
    """A model in this process (the scripted one)."""

    def send(self, body: bytes) -> AbstractAsyncContextManager[UpstreamReply]: ...

    async def close(self) -> None: ...


class InProcess:
    """A local model as an upstream: it has the request as soon as it is handed over."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model

    def send(self, body: bytes, delivery: Delivery) -> AbstractAsyncContextManager[UpstreamReply]:
        delivery.sent = True
        return self.model.send(body)

    async def close(self) -> None:
        await self.model.close()


class HttpUpstream:
    """``POST {base_url}/chat/completions`` with ``Authorization: <scheme> <key>``.

    ``scheme`` is ``Bearer`` for OpenAI-style APIs and ``Key`` for the fal OpenRouter router.
    """

    def __init__(
        self, base_url: str, api_key: str = "", *, scheme: str = "Bearer", read_timeout: float = 120
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._authorization = f"{scheme} {api_key}" if api_key else ""
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=CONNECT_TIMEOUT_SECONDS, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"HttpUpstream({self._url!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        return headers

    @asynccontextmanager
    async def send(self, body: bytes, delivery: Delivery) -> AsyncIterator[UpstreamReply]:
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_chunk_sent.append(_body_sent)
            self._session = aiohttp.ClientSession(timeout=self._timeout, trace_configs=[trace])
        try:
            # A redirect is an answer: following it would send the body (and the receipt's
            # provider would not be where it went) to a host nobody configured.
            response = await self._session.post(
                self._url,
                data=body,
                headers=self._headers(),
                trace_request_ctx=delivery,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ModelError(_failure(exc)) from exc
        try:
            yield UpstreamReply(
                response.status, response.content_type, _chunks(response), response.headers
            )
        finally:
            if response.content.at_eof():
                response.release()  # keep the connection for the next call
            else:
                response.close()  # cut: the upstream sees the connection go

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _body_sent(
    _session: aiohttp.ClientSession,
    context: SimpleNamespace,
    _params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    """aiohttp calls this as it hands the body (with the headers) to the connection: from
    here on the upstream may have the request, whatever fails next."""
    delivery = context.trace_request_ctx
    if isinstance(delivery, Delivery):
        delivery.sent = True


def _failure(exc: BaseException) -> str:
    """Why no answer came, in words for the log (never the request)."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
        exc.os_error, ConnectionRefusedError
    ):
        return "connection refused"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect timeout"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "read timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the upstream closed the connection"
    return type(exc).__name__


async def _chunks(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ModelError(f"upstream broke off: {type(exc).__name__}") from exc
