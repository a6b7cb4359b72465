"""The model upstream port and its HTTP implementation (any OpenAI-compatible base URL).

The proxy hands an upstream the exact request bytes it hashed; the upstream sends exactly
those bytes and yields the response bytes as they arrive, never re-encoding either.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from engine.errors import ModelError

CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class UpstreamReply:
    """An upstream's answer: status, content type, and its body as chunks as they arrive."""

    status: int
    content_type: str
    chunks: AsyncGenerator[bytes, None]

    @property
    def is_stream(self) -> bool:
        return self.status == 200 and self.content_type == "text/event-stream"


class ModelUpstream(Protocol):
    """Sends one ``/chat/completions`` body. Leaving the context closes the upstream
    connection, so a stream the caller stops reading is cut at the upstream too.
    Raises ModelError when the upstream cannot be reached or breaks mid-body."""

    def send(self, body: bytes) -> AbstractAsyncContextManager[UpstreamReply]: ...

    async def close(self) -> None: ...


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
    async def send(self, body: bytes) -> AsyncIterator[UpstreamReply]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            response = await self._session.post(self._url, data=body, headers=self._headers())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ModelError(f"upstream unreachable: {type(exc).__name__}") from exc
        try:
            yield UpstreamReply(response.status, response.content_type, _chunks(response))
        finally:
            if response.content.at_eof():
                response.release()  # keep the connection for the next call
            else:
                response.close()  # cut: the upstream sees the connection go

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _chunks(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ModelError(f"upstream broke off: {type(exc).__name__}") from exc
