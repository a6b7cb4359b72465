"""Our upstream keys withheld from an upstream's answer before anyone sees it.

An upstream that refuses a key quotes it: OpenAI's 401 ``invalid_api_key`` says "Incorrect
API key provided: sk-abcde*****...wxyz", the key's first eight and last four characters (a
short key nearly whole). The key is the proxy's: the agent never holds it, and no part of
it may reach the agent, a log, a receipt or the kept bodies. So, in an answer the proxy
holds whole (not a stream, which is passed on as it arrives):

- a 401 or 403 error object's ``message`` is replaced by ours (``type``, ``param`` and
  ``code`` kept): what an upstream says about our credentials is not the agent's business;
- in any answer that is not 2xx, every run of bytes that is a key, or that begins or ends
  one with at least ``MIN_SHOWN`` bytes, is masked with ``*`` (the same length);
- in a 2xx answer, a whole key only (a few characters of one are too common to mask there).

Does NOT find a key encoded (JSON ``\\u`` escapes, base64, URL encoding), split by other
bytes, or inside a stream; a masked answer keeps its length, so the key's length shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import chain

from adapters.llm.sse import json_value

MIN_SHOWN = 4  # the shortest start or end of a key that is masked in an error answer
MASK = b"*"
CREDENTIALS_REFUSED = (
    "The model upstream refused the proxy's credentials; its message is withheld because it "
    "may quote the key. The operator must check the key configured for this upstream."
)
REFUSED_STATUSES = (401, 403)


def withhold(body: bytes | bytearray, status: int, keys: Sequence[str]) -> bytes | None:
    """``body`` (an upstream's whole answer with ``status``) with ``keys`` withheld as the
    module says; None when nothing was withheld (no key configured, none found)."""
    secrets = [key.encode() for key in keys if key]
    if not secrets or not body:
        return None
    source = _message_replaced(body) if status in REFUSED_STATUSES else body
    whole_only = 200 <= status < 300
    spans = chain.from_iterable(_spans(source, key, whole_only) for key in secrets)
    first = next(spans, None)
    if first is None:
        return bytes(source) if source != body else None
    out = bytearray(source)
    for start, end in chain((first,), spans):
        out[start:end] = MASK * (end - start)
    return bytes(out)


def _message_replaced(body: bytes | bytearray) -> bytes:
    """An OpenAI-style error object with our message; other bodies as they are."""
    answer = json_value(bytes(body))
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or "message" not in error:
        return bytes(body)
    error["message"] = CREDENTIALS_REFUSED
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


def _spans(body: bytes | bytearray, key: bytes, whole_only: bool) -> Iterator[tuple[int, int]]:
    """Where ``key`` is in ``body``: whole, and unless ``whole_only`` also its starts and
    ends of at least ``MIN_SHOWN`` bytes (each found once, the longest at each place)."""
    yield from ((start, start + len(key)) for start in _found(body, key))
    if whole_only or len(key) <= MIN_SHOWN:
        return
    head, tail = key[:MIN_SHOWN], key[-MIN_SHOWN:]
    start = body.find(head)
    while start >= 0:
        end = start + MIN_SHOWN
        while end - start < len(key) and end < len(body) and body[end] == key[end - start]:
            end += 1
        yield start, end
        start = body.find(head, end)
    end = _after(body.find(tail))
    while end > 0:
        start = end - MIN_SHOWN
        while end - start < len(key) and start > 0 and body[start - 1] == key[start - end - 1]:
            start -= 1
        yield start, end
        end = _after(body.find(tail, end))


def _after(found: int) -> int:
    return found + MIN_SHOWN if found >= 0 else -1


def _found(body: bytes | bytearray, needle: bytes) -> Iterator[int]:
    start = body.find(needle)
    while start >= 0:
        yield start
        start = body.find(needle, start + 1)
