"""The scripted model's canned answers (``Canned``: an answer given as it is) and OpenAI's
documented refusals built as such: its error object, 429 with ``Retry-After``, the context
window exceeded, an API key refused (quoted as OpenAI quotes it), 500 and 503.

Apart from :mod:`bot.scripted_model` because tests build these answers themselves (to queue
them on ``ScriptedModel.canned``, or to check what the proxy withholds from them), and the
scripted model gives the same answers for its own refusals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

QUOTED_START, QUOTED_END = 8, 4  # what OpenAI's 401 shows of a key it refused


@dataclass(frozen=True)
class Canned:
    """An answer given as it is (status, body, content type, headers): a documented refusal
    or any other shape a test needs from an upstream."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def openai_error(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Canned:
    """An error answer as OpenAI sends one: ``{"error": {message, type, param, code}}``."""
    error = {"message": message, "type": kind, "param": param, "code": code}
    return Canned(status, json.dumps({"error": error}).encode(), headers=dict(headers or {}))


def rate_limited(retry_after_seconds: int = 1, retry_after_ms: int | None = None) -> Canned:
    """429 ``rate_limit_exceeded`` with ``Retry-After`` (seconds), optionally
    ``retry-after-ms``, and the ``x-ratelimit-*`` headers."""
    headers = {
        "Retry-After": str(retry_after_seconds),
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": f"{retry_after_seconds}s",
        "x-request-id": "req_sim_rate_limited",
    }
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    message = f"Rate limit reached for requests. Please try again in {retry_after_seconds}s."
    return openai_error(429, message, "requests", "rate_limit_exceeded", headers=headers)


def context_length_exceeded(limit: int, tokens: int) -> Canned:
    message = (
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {tokens} tokens. Please reduce the length of the messages."
    )
    return openai_error(
        400, message, "invalid_request_error", "context_length_exceeded", "messages"
    )


def invalid_api_key(presented: str = "") -> Canned:
    """401 ``invalid_api_key``. Given the key presented, the message quotes it as OpenAI's
    does: its first eight and last four characters with a ``*`` for each one between (a key
    of twelve characters or fewer, whole)."""
    quoted = f": {masked_key(presented)}" if presented else ""
    message = (
        f"Incorrect API key provided{quoted}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return openai_error(401, message, "invalid_request_error", "invalid_api_key")


def masked_key(key: str) -> str:
    """A key as OpenAI's 401 quotes it (``sk-abcde*****...wxyz``)."""
    if len(key) <= QUOTED_START + QUOTED_END:
        return key
    hidden = len(key) - QUOTED_START - QUOTED_END
    return key[:QUOTED_START] + "*" * hidden + key[-QUOTED_END:]


def server_error() -> Canned:
    message = "The server had an error while processing your request. Sorry about that!"
    return openai_error(500, message, "server_error")


def overloaded(retry_after_seconds: int = 2) -> Canned:
    message = "The engine is currently overloaded, please try again later."
    headers = {"Retry-After": str(retry_after_seconds)}
    return openai_error(503, message, "server_error", headers=headers)
