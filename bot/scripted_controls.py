"""What a test can make the scripted model do besides refusing: hold its calls until the
test lets them go (``Gate``), and frame its streams in any valid way (``StreamShape``).

Apart from :mod:`bot.scripted_model` because they are the test's handles on the simulated
upstream, not part of what it answers: by default no call is held and a stream is framed as
OpenAI frames it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StreamShape:
    """How the scripted model frames a stream. Every shape is valid Server-Sent Events
    (WHATWG HTML, "Parsing an event stream") as OpenAI-compatible upstreams send them; the
    default is OpenAI's own framing."""

    newline: str = "\n"  # "\r\n" and "\r" end lines as well
    space: bool = True  # "data: {...}"; False: "data:{...}"
    multiline: bool = False  # each event's JSON indented, one data line per line
    keepalive: str = ""  # a comment sent before each event ("OPENROUTER PROCESSING")
    error: Mapping[str, Any] | None = None  # after the first delta: {"error": ...}, then the end
    error_event: bool = False  # the error event named "error" (event: error)
    done: bool = True  # the stream ends with data: [DONE]
    last_blank_line: bool = True  # the last event ends with its blank line
    break_after: int | None = None  # the connection drops after this many chunks
    break_mid_event: bool = False  # ... and half of the next one (a line cut off)

    def __post_init__(self) -> None:
        if self.newline not in ("\n", "\r\n", "\r"):
            raise ValueError("an SSE line ends in LF, CRLF or CR")

    def event(self, data: str, name: str = "") -> str:
        field_sep = ": " if self.space else ":"
        lines = [f"event{field_sep}{name}"] if name else []
        lines += [f"data{field_sep}{line}" for line in data.split("\n")]
        return "".join(line + self.newline for line in lines)

    def frame(self, events: Sequence[tuple[str, str]]) -> list[bytes]:
        """``(event name, data)`` pairs as the stream's chunks, one event each."""
        chunks = []
        for index, (name, data) in enumerate(events):
            last = index == len(events) - 1
            text = f": {self.keepalive}{self.newline * 2}" if self.keepalive else ""
            text += self.event(data, name)
            if not last or self.last_blank_line:
                text += self.newline
            chunks.append(text.encode())
        return chunks

    def json(self, value: Any) -> str:
        if self.multiline:
            return json.dumps(value, indent=1, ensure_ascii=False)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Gate:
    """Holds each call the scripted model receives until the test lets it go, so a test
    can keep calls in flight for as long as it needs (no timing involved)."""

    def __init__(self) -> None:
        self.held: list[asyncio.Event] = []  # the calls waiting, in order of arrival
        self.opened = False  # calls arriving now pass at once
        self._arrived = asyncio.Condition()

    async def wait(self) -> None:
        if self.opened:
            return
        go = asyncio.Event()
        async with self._arrived:
            self.held.append(go)
            self._arrived.notify_all()
        try:
            await go.wait()
        finally:  # a call cut while held (its caller hung up) is no longer held
            if go in self.held:
                self.held.remove(go)

    async def holding(self, count: int) -> None:
        """Returns once ``count`` calls are held."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.held) >= count)

    def release(self, count: int = 1) -> None:
        """Lets the first ``count`` held calls go."""
        for go in self.held[:count]:
            go.set()
        del self.held[:count]

    def open(self) -> None:
        """Lets every held call go, and every later one pass."""
        self.opened = True
        self.release(len(self.held))
