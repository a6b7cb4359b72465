"""Why the tenant refused a call, in words a person can act on: for the escalation of a
rollback the tenant would not let end (docs/notes/tenant-refuses-app.md).

Built from a tool result's ``error`` code, the HTTP status and the AADSTS number its message
names (the adapter's message, already scrubbed of the secret: ``adapters.graph.auth``), and
a fixed hint per kind of refusal a person must fix. Never the message's free text, which is
the tenant's, nor anything of the app's credentials: a code that is not a plain identifier
is left out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_AADSTS = re.compile(r"\bAADSTS\d{1,9}\b")
_STATUS = re.compile(r"^Graph ([1-5]\d\d) ")  # GraphError's text: "Graph <status> <code>: ..."

# What a person must do, by the token endpoint's AADSTS number (docs/graph.md section 5).
_BY_AADSTS = {
    "AADSTS7000222": "the app's client secret has expired: replace the app's client secret",
    "AADSTS7000215": "the app's client secret is not valid (deleted or replaced): "
    "replace the app's client secret",
    "AADSTS7000112": "the app is disabled in the tenant: enable its service principal",
}
# ... and by Graph's error code.
_BY_CODE = {
    "Authorization_RequestDenied": "the app lacks the Graph permission this step needs: "
    "grant the Graph permission again",
    "TokenEndpointUnavailable": "the token endpoint could not be reached",
}


def describe_refusal(result: Mapping[str, Any]) -> str | None:
    """``code [AADSTS…] (Graph status): hint`` for an error result; None when it names no
    error code (a success, or a tenant answer that is not a refusal)."""
    code = result.get("error")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return None
    message = result.get("message")
    text = message if isinstance(message, str) else ""
    aadsts = _AADSTS.search(text)
    status = _STATUS.match(text)
    said = code
    if aadsts is not None:
        said += f" {aadsts.group(0)}"
    if status is not None and status.group(1) != "401":
        said += f" (Graph {status.group(1)})"  # a 401 adds nothing to its code
    hint = _BY_AADSTS.get(aadsts.group(0)) if aadsts is not None else None
    hint = hint or _BY_CODE.get(code)
    return f"{said}: {hint}" if hint else said


def describe_gateway_refusal(reason: str) -> str | None:
    """The gateway's own refusal code (``TOKEN_INVALID``, ...), when it is one."""
    code = reason.split(":", 1)[0].strip()
    return f"gateway refused: {code}" if _CODE.fullmatch(code) else None
