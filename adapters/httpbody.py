"""Reading HTTP bodies with a hard size limit, for every server and client of ours.

A single ``content.read(n)`` may return only the first TCP chunk of a body; these read to
the end and refuse (``TooLarge``) as soon as the limit is passed, without buffering more.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from aiohttp import web

from engine.errors import TooLarge

CHUNK = 16 * 1024


async def read_capped(chunks: AsyncIterable[bytes], limit: int, what: str = "body") -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise TooLarge(f"{what} is above the {limit} byte limit")
    return bytes(data)


async def read_request(request: web.Request, limit: int) -> bytes:
    """The request body; a declared Content-Length above ``limit`` is refused unread."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"body of {declared} bytes is above the {limit} byte limit")
    return await read_capped(request.content.iter_chunked(CHUNK), limit)
