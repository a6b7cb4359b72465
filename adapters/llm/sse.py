"""Server-Sent Events as OpenAI streams them: ``data: <json>`` events, ``data: [DONE]``
at the end, and ``: <text>`` comment lines (which clients ignore).

Reading follows the WHATWG HTML "Server-sent events" parsing rules, as any client of the
stream would: lines end in CRLF, LF or CR (nothing else); a line starting with ``:`` is a
comment (keep-alives such as ``: OPENROUTER PROCESSING``); ``field:value`` loses one space
after the colon (``data:x`` is as good as ``data: x``); several ``data`` lines of one event
are joined with a line feed; ``event`` names the event; a blank line dispatches it; and an
event the stream ends before its blank line is discarded (a client never sees it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

DONE = "[DONE]"
_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


def format_event(data: Any) -> bytes:
    """One ``data:`` event; ``data`` is a JSON value or the literal ``[DONE]``."""
    text = data if data == DONE else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def format_comment(text: str) -> bytes:
    """A comment line; ``text`` must be one line (compact JSON is)."""
    if "\n" in text or "\r" in text:
        raise ValueError("an SSE comment is one line")
    return f": {text}\n\n".encode()


def ends_event(stream: bytes | bytearray) -> bool:
    """Does ``stream`` end at an event boundary (a blank line), so that what is written next
    starts a new event? An empty stream does."""
    return not stream or stream.endswith((b"\n\n", b"\r\r", b"\r\n\r\n"))


@dataclass(frozen=True)
class Event:
    """One dispatched event: its type (``message`` unless an ``event`` field named one) and
    its data (the ``data`` lines joined with line feeds)."""

    type: str
    data: str


def events(stream: bytes) -> Iterator[Event]:
    """The events a client dispatches from a stream's bytes, in order."""
    return iter(_parse(stream)[0])


def comments(stream: bytes) -> list[str]:
    """The text of a stream's comment lines (one space after the colon removed), in order;
    a line cut off is none."""
    return [line[1:].removeprefix(" ") for line in _lines(stream) if line.startswith(":")]


def _lines(stream: bytes) -> list[str]:
    """The stream's whole lines, by the spec's line ends."""
    text = stream.decode("utf-8", "replace").removeprefix(_BOM)
    lines = _LINE_END.split(text)
    lines.pop()  # what followed the last line end: a line cut off, never interpreted
    return lines


def _parse(stream: bytes) -> tuple[list[Event], Event | None]:
    """The dispatched events, and the one the stream ended in before its blank line (which
    a client discards; None when there is none)."""
    lines = _lines(stream)
    dispatched: list[Event] = []
    data: list[str] = []
    kind, has_data = "", False
    for line in lines:
        if not line:  # a blank line dispatches the event being built
            if has_data:
                dispatched.append(Event(kind or "message", "\n".join(data)))
            kind, data, has_data = "", [], False
            continue
        if line.startswith(":"):
            continue  # a comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
            has_data = True
        elif name == "event":
            kind = value
        # id, retry and unknown fields carry nothing a receipt needs
    pending = Event(kind or "message", "\n".join(data)) if has_data else None
    return dispatched, pending


def json_value(text: str | bytes) -> Any:
    """The JSON value of ``text``; None when it is not JSON (nesting too deep included: an
    upstream's answer must never raise out of the code that receipts it)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def data_events(stream: bytes) -> Iterator[Any]:
    """The JSON values of a stream's dispatched data events (``[DONE]`` and junk skipped)."""
    return iter(summarize(stream).answers)


@dataclass(frozen=True)
class StreamSummary:
    """What a receipt needs of a whole stream: its answers (JSON values of its data events,
    in order), whether it was closed by ``data: [DONE]``, and whether it carried an error
    (an ``error`` event, or a data event with an ``error`` member, which the OpenAI SDK
    raises as an APIError)."""

    answers: list[Any] = field(default_factory=list)
    done: bool = False
    error: bool = False


def summarize(stream: bytes) -> StreamSummary:
    dispatched, pending = _parse(stream)
    answers: list[Any] = []
    done = error = False
    for event in dispatched:
        if event.data.strip() == DONE:
            done = True
            continue
        value = json_value(event.data)
        if event.type == "error" or (isinstance(value, Mapping) and value.get("error")):
            error = True
        if value is not None:
            answers.append(value)
    # A whole "data: [DONE]" line still says the upstream finished, even if the stream
    # ended before the blank line that would have dispatched it.
    done = done or (pending is not None and pending.data.strip() == DONE)
    return StreamSummary(answers, done, error)
