"""The tenant gate: a single-tenant bot acts only on activities from its own Entra tenant.

Teams user ids (``29:...``), ``aadObjectId`` values and channel ids mean something only inside
one tenant, so an activity from another tenant is refused before anything reads it, however
well it is signed and whatever conversation it names (defence in depth behind the channel
allow-list). Every tenant the activity names must be ours. One that names none is let
through: Teams always names the tenant, so only another channel (the Emulator, Web Chat)
omits it, and those are still held to the channel allow-list and the identity mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

FOREIGN_TENANT = "FOREIGN_TENANT"
REFUSAL_TEXT = "This bot serves one organisation only; nothing was done."
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"


def tenants_named(body: Mapping[str, Any]) -> list[object]:
    """Every tenant id the activity states (``channelData.tenant.id``,
    ``conversation.tenantId``), as sent: absent ones are left out."""
    named: list[object] = []
    channel_data = body.get("channelData")
    tenant = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
    if isinstance(tenant, Mapping) and "id" in tenant:
        named.append(tenant["id"])
    conversation = body.get("conversation")
    if isinstance(conversation, Mapping) and "tenantId" in conversation:
        named.append(conversation["tenantId"])
    return named


def tenant_problem(tenant_id: str, body: Mapping[str, Any]) -> str:
    """Why the activity is not from ``tenant_id`` ("" when it is, or names no tenant).
    Tenant ids are GUIDs, which Entra treats case-insensitively."""
    named = tenants_named(body)
    ours = tenant_id.strip().lower()
    if all(isinstance(t, str) and t.strip().lower() == ours for t in named):
        return ""
    return FOREIGN_TENANT


def refusal_response(body: Mapping[str, Any]) -> web.Response:
    """What Teams expects back: an invoke gets an HTTP 200 invoke response with a short
    message (else the client shows a generic failure and may retry); anything else a bare
    202, and nothing is posted to the other tenant's conversation."""
    if body.get("type") == "invoke":
        answer = {"statusCode": 200, "type": MESSAGE_TYPE, "value": REFUSAL_TEXT}
        return web.json_response(answer, status=200)
    return web.Response(status=202)


def shown(value: object) -> str:
    """A tenant id for the log: short, and never anything but printable text."""
    text = value if isinstance(value, str) else type(value).__name__
    return "".join(c if c.isprintable() else "?" for c in text[:64])
