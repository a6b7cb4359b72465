"""Token counts an OpenAI-compatible answer reports (``usage``), for receipts.

Counts are what the upstream says (self-reported); an answer without ``usage`` counts 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.llm.sse import data_events


def _counts(usage: object) -> tuple[int, int] | None:
    if not isinstance(usage, Mapping):
        return None
    found = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in found):
        return None
    return int(found[0] or 0), int(found[1] or 0)


def usage_of(body: bytes, stream: bool) -> tuple[int, int]:
    """(input tokens, output tokens) of a complete answer or of a stream's events."""
    answers: list[Any]
    if stream:
        answers = list(data_events(body))
    else:
        try:
            answers = [json.loads(body)]
        except ValueError:
            answers = []
    return usage_in(answers)


def usage_in(answers: Sequence[Any]) -> tuple[int, int]:
    """(input tokens, output tokens) of answers already parsed (a stream's: in order)."""
    for answer in reversed(answers):  # a stream reports usage in its last chunk
        counts = _counts(answer.get("usage")) if isinstance(answer, Mapping) else None
        if counts is not None:
            return counts
    return 0, 0
