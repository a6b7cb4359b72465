"""A request no HTTP parser accepts is the peer's fault: every listener (the public and
internal aiohttp ones, the MCP gateway's uvicorn) answers 400 and the log gets one JSON
line naming the kind of error, with no traceback and none of the bytes the peer sent."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from adapters.openclaw.mcp_gateway import McpGateway
from bot import logs
from bot.loopback import serve
from tests.integration.console.conftest import fast_runtime

SECRET = b"s3cr3t-bearer-" * 700  # over aiohttp's 8190-byte header limit
TOO_LONG = b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: " + SECRET + b"\r\n\r\n"
BAD_HEADER = b"GET / HTTP/1.1\r\nHost: x\r\nX-Sent\x01by-them: s3cr3t\r\n\r\n"
GARBAGE = b"GARBAGE s3cr3t\r\n\r\n"
FIRST = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_log() -> Iterator[Lines]:
    """The service's own log set-up (bot.logs.configure), written to a buffer."""
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    logs.configure("info")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    # every line must be JSON: json.loads fails on any other
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


async def send_raw(url: str, raw: bytes, after_one: bool = False) -> bytes:
    """``raw`` on a fresh connection, after one good request and its answer if
    ``after_one``; the whole answer to ``raw`` (the server closes after a 400)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        if after_one:
            writer.write(FIRST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"Content-Length: (\d+)", head)
            assert length is not None
            await reader.readexactly(int(length[1]))
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 60)  # a hang guard, not a deadline
    finally:
        writer.close()


def assert_one_clean_line(lines: list[dict[str, Any]], logger: str, kind: str) -> None:
    assert len(lines) == 1, lines
    (line,) = lines
    assert line["logger"] == logger
    assert line["level"] == "warning"
    assert kind in line["msg"]
    assert "exc" not in line  # no traceback
    assert "error" not in line
    assert "s3cr3t" not in json.dumps(line)


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug in a handler")


@pytest.fixture
async def listeners(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    runtime = fast_runtime(tmp_path)
    await runtime.start()
    app = web.Application()
    app.router.add_get("/bug", broken)
    served = await serve(app)
    yield {"public": runtime.url, "internal": runtime.internal_url, "loopback": served.url}
    await served.close()
    await runtime.stop()


@pytest.mark.parametrize(
    ("raw", "after_one", "kind"),
    [
        (TOO_LONG, False, "LineTooLong"),
        (BAD_HEADER, False, "BadHttpMessage"),
        (GARBAGE, True, "BadHttpMethod"),  # aiohttp logs it at ERROR after a first request
    ],
    ids=["header-too-long", "bad-header", "garbage-after-a-request"],
)
async def test_every_aiohttp_listener_logs_a_malformed_request_as_one_line(
    listeners: dict[str, str], json_log: Lines, raw: bytes, after_one: bool, kind: str
) -> None:
    for name, url in listeners.items():
        before = len(json_log())
        answer = await send_raw(url, raw, after_one)
        assert answer.startswith(b"HTTP/1.0 400 "), name
        assert_one_clean_line(json_log()[before:], "aiohttp.server", kind)
        assert "127.0.0.1" in json_log()[-1]["msg"]  # the peer


async def test_non_http_on_a_listener_is_at_most_a_debug_line(
    listeners: dict[str, str], json_log: Lines
) -> None:
    # aiohttp itself logs a first request it cannot read at all at DEBUG (port scanners)
    for url in listeners.values():
        assert (await send_raw(url, GARBAGE)).startswith(b"HTTP/1.0 400 ")
    assert json_log() == []


async def test_a_bug_in_a_handler_keeps_its_traceback(
    listeners: dict[str, str], json_log: Lines
) -> None:
    answer = await send_raw(listeners["loopback"], b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ")
    (line,) = json_log()
    assert (line["level"], line["error"]) == ("error", "RuntimeError")
    assert "Traceback (most recent call last)" in line["exc"]


class NoCalls:
    async def call(self, *args: object) -> object:
        raise AssertionError("a malformed request reaches no tool")


async def test_the_mcp_gateway_logs_a_malformed_request_as_one_json_line(
    json_log: Lines,
) -> None:
    gateway = McpGateway(NoCalls())
    url = await gateway.start()
    try:
        for raw in (GARBAGE, BAD_HEADER):
            before = len(json_log())
            assert (await send_raw(url, raw)).startswith(b"HTTP/1.1 400 ")
            # the MCP session manager logs its start-up at INFO meanwhile: uvicorn's lines only
            lines = [line for line in json_log()[before:] if line["logger"].startswith("uvicorn")]
            assert_one_clean_line(lines, "uvicorn.error", "Invalid HTTP request")
    finally:
        await gateway.close()
