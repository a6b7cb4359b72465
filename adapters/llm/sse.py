"""Server-Sent Events as OpenAI streams them: ``data: <json>`` events, ``data: [DONE]``
at the end, and ``: <text>`` comment lines (which clients ignore)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

DONE = "[DONE]"


def format_event(data: Any) -> bytes:
    """One ``data:`` event; ``data`` is a JSON value or the literal ``[DONE]``."""
    text = data if data == DONE else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def format_comment(text: str) -> bytes:
    """A comment line; ``text`` must be one line (compact JSON is)."""
    if "\n" in text or "\r" in text:
        raise ValueError("an SSE comment is one line")
    return f": {text}\n\n".encode()


def data_events(stream: bytes) -> Iterator[Any]:
    """The JSON values of a complete stream's ``data:`` events (``[DONE]`` and junk skipped)."""
    for line in stream.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        text = line[5:].strip()
        if text == DONE:
            continue
        try:
            yield json.loads(text)
        except ValueError:
            continue
