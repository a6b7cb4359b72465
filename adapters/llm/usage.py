"""Token counts an OpenAI-compatible answer reports (``usage``), for receipts.

Counts are what the upstream says (self-reported). A stream reports them only when asked
(``stream_options.include_usage``), in one extra chunk before ``data: [DONE]`` whose
``choices`` is empty (every other chunk has ``usage: null``), and a stream cut short may
never send it: ``reported`` tells a count of 0 from no count at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.llm.sse import data_events, json_value

# A receipt is canonical JSON (RFC 8785): integers beyond this cannot be written exactly.
MAX_COUNT = 2**53 - 1


def _counts(usage: object) -> tuple[int, int] | None:
    if not isinstance(usage, Mapping):
        return None
    found = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    if not all(_is_count(n) for n in found):
        return None
    return int(found[0] or 0), int(found[1] or 0)


def _is_count(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT


def reported(answers: Sequence[Any]) -> tuple[int, int] | None:
    """(input tokens, output tokens) of answers already parsed (a stream's: in order), as
    the last one that reports a usable ``usage`` says; None when none does."""
    for answer in reversed(answers):  # a stream reports usage in its last chunk
        counts = _counts(answer.get("usage")) if isinstance(answer, Mapping) else None
        if counts is not None:
            return counts
    return None


def usage_of(body: bytes, stream: bool) -> tuple[int, int]:
    """(input tokens, output tokens) of a complete answer or of a stream's events; 0 and 0
    when nothing was reported."""
    answers: list[Any] = list(data_events(body)) if stream else [json_value(body)]
    return reported(answers) or (0, 0)
