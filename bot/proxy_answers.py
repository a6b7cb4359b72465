"""What the model proxy answers its caller by itself: its refusals, in the shape of
OpenAI's error object, and the upstream's answer made ready to pass on (the headers passed,
the signed receipt spliced into a JSON answer without re-encoding it).

Apart from :mod:`bot.model_proxy` because these are plain functions of bytes and errors,
with no call in flight; the handler picks which one a call gets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from engine.canonical import jcs
from engine.errors import AdapterError, BreakGlassError, GatewayRefusal, InvalidToken, TooLarge

log = logging.getLogger("breakglass.model_proxy")
# An upstream's headers the caller gets too: how long to wait before trying again (OpenAI's
# SDKs honour retry-after-ms, then Retry-After, and x-should-retry), the rate-limit state,
# and the upstream's request id. Nothing else of the upstream's is passed on.
PASSED_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-request-id",
)
PASSED_HEADER_CHARS = 200  # longer values are not passed on


def passed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream's headers the caller gets too (``PASSED_HEADERS``), one line each."""
    lowered = {name.lower(): value for name, value in headers.items()}
    passed = {}
    for name in PASSED_HEADERS:
        value = lowered.get(name)
        if value is not None and len(value) <= PASSED_HEADER_CHARS and value.isprintable():
            passed[name] = value
    return passed


def with_member(body: bytes, parsed: dict[str, Any], name: str, value: object) -> bytes | None:
    """``body`` (the JSON object ``parsed``) with ``name: value`` added as its last member and
    its own bytes kept: re-encoding a large answer costs more than every check of the call.
    None when that cannot be done by appending: a body that is not UTF-8, or that holds the
    name already (the caller replaces it then, so the answer never carries it twice)."""
    if name in parsed or json.detect_encoding(body) != "utf-8" or body.startswith(_UTF8_BOM):
        return None
    head = body.rstrip(b" \t\r\n")[:-1]  # the object's closing brace removed
    member = json.dumps(name).encode() + b":" + jcs(value)
    return head + (b"," if parsed else b"") + member + b"}"


_UTF8_BOM = b"\xef\xbb\xbf"


def error(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "breakglass_refusal", "code": code}}
    return web.json_response(body, status=status)


def refusal(err: BreakGlassError) -> web.Response:
    """Token problems stay opaque to the caller; the log keeps the precise reason."""
    if isinstance(err, InvalidToken):
        log.info("model call refused: %s", err.reason)
        return error(401, "TOKEN_INVALID", "the scoped token was refused")
    if isinstance(err, GatewayRefusal):
        log.info("model call refused: %s (%s)", err.reason, err.detail)
        return error(403, err.reason, err.detail or err.reason)
    if isinstance(err, TooLarge):
        log.info("model call refused: REQUEST_TOO_LARGE (%s)", err)  # the limit, no content
        return error(413, "REQUEST_TOO_LARGE", str(err))
    if isinstance(err, AdapterError):
        log.warning("model call failed before forwarding: %s", type(err).__name__)
        return error(503, "UNAVAILABLE", "try again")
    # The message may quote the body (a duplicate key): the log gets only its kind.
    log.info("model call refused: INVALID_REQUEST (%s)", type(err).__name__)
    return error(400, "INVALID_REQUEST", str(err)[:200])
