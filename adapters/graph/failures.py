"""Turning Graph's answers into our errors.

Graph error bodies look like
``{"error": {"code", "message", "innerError": {"request-id", "date", "client-request-id"}}}``;
each becomes ``GraphError(code, message, status=, request_id=)``. A body that is not in that
shape (a proxy's HTML page, an empty body) still becomes a ``GraphError`` with a generic code,
and its text is not copied (it may be long or hostile).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.errors import GraphError

_MAX_MESSAGE = 300


class ResponseLost(GraphError):
    """A write was sent but its answer never came (connection dropped, timeout, 502/504).

    The write may or may not have been applied: callers must read back before any resend.
    """

    def __init__(self, method: str, path: str, status: int = 0) -> None:
        super().__init__(
            "ResponseLost", f"no answer to {method} {path}; outcome unknown", status=status
        )


def request_id_of(headers: Mapping[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "request-id"), None)


def error_from_response(status: int, text: str, headers: Mapping[str, str]) -> GraphError:
    """The ``GraphError`` for one non-2xx answer."""
    error = _error_object(text)
    code = _short(error.get("code")) or f"HTTP{status}"
    message = _short(error.get("message")) or "Graph returned an error without a body"
    inner = error.get("innerError")
    inner_id = inner.get("request-id") if isinstance(inner, dict) else None
    request_id = _short(inner_id) or request_id_of(headers)
    return GraphError(code, message, status=status, request_id=request_id)


def _error_object(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return {}
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else {}


def _short(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.splitlines()[0][:_MAX_MESSAGE]
