"""Application password credentials: the credential a window may create and its end removes.

``POST /applications/{id}/addPassword`` returns the new ``passwordCredential`` with its
``keyId`` and ``secretText`` (shown once). The secret never leaves this module: the tool
result carries the keyId, the hint and a hash of the secret, so receipts, cards and logs
never hold it. ``POST /applications/{id}/removePassword`` with ``{"keyId"}`` removes it;
an unknown keyId is an error (400 in practice, see docs/graph.md), so a resend after a lost
answer reads the application before calling a missing key a failure. After a lost answer to
``addPassword`` the application is read until the password shows (bounded by
``readback_attempts``: replicas lag) before anything is sent again.

A removal whose ``key_id`` is ``EVERY_MARKED_KEY`` removes every password of the application
whose display name ends with this job's marker (the one ``addPassword`` gave it): what a
credential write whose result was never recorded may have created (ADR 0020). It names the
key ids it found; whether that proves nothing else is there is the engine's to judge
(replicas lag).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from adapters.graph.arguments import is_guid, job_marker
from adapters.graph.context import ToolContext
from engine.containment import EVERY_MARKED_KEY
from engine.errors import GraphError, InputError
from engine.tools import ToolResult

Doc = dict[str, Any]


def _path(args: Mapping[str, Any], action: str = "") -> str:
    return f"/applications/{args['application_id']}{action}"


async def _passwords(ctx: ToolContext, args: Mapping[str, Any]) -> list[Doc]:
    resp = await ctx.client.get(_path(args), {"$select": "id,passwordCredentials"})
    found = resp.body.get("passwordCredentials")
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _display_name(args: Mapping[str, Any], deployment: str) -> str:
    """The credential's name carries the job marker, so reconciliation can find it."""
    chosen = str(args.get("display_name") or "breakglass")[:60]
    return f"{chosen} {job_marker(str(args['job_id']), deployment)}"


def _public(cred: Mapping[str, Any], recovered: bool) -> Doc:
    """A credential as a tool result: never its secret, only a hash of it."""
    secret = cred.get("secretText")
    out: Doc = {
        "key_id": cred.get("keyId"),
        "hint": cred.get("hint"),
        "display_name": cred.get("displayName"),
        "end_date_time": cred.get("endDateTime"),
        "recovered": recovered,
    }
    if isinstance(secret, str):
        out["secret_sha256"] = hashlib.sha256(secret.encode()).hexdigest()
    return out


def _add_body(name: str) -> Doc:
    return {"passwordCredential": {"displayName": name}}


async def add_password(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    name = _display_name(args, ctx.deployment)

    async def send() -> Doc:
        return dict((await ctx.client.post(_path(args, "/addPassword"), _add_body(name))).body)

    async def named() -> Doc | None:
        return next((p for p in await _passwords(ctx, args) if p.get("displayName") == name), None)

    async def read_back() -> Doc | None:  # a lost answer: ours landed if its name is there
        # Patiently: a replica may not show it yet, and a resend would leave a second password
        # (valid for years, in no result, so never removed) if the first one had landed.
        found, _ = await ctx.poll(named, lambda cred: cred is not None)
        return found

    cred, recovered = await ctx.write_once(send, read_back)
    if not is_guid(cred.get("keyId")):
        raise GraphError("MalformedResponse", "addPassword returned no keyId")
    body = _public(cred, recovered) | {"application_id": args["application_id"]}
    return ToolResult("success", body)


async def remove_password(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    key_id = str(args["key_id"])
    if key_id == EVERY_MARKED_KEY:
        return await _remove_marked(ctx, args)
    if not is_guid(key_id):
        raise InputError("argument key_id must be a GUID")
    already = await _send_removal(ctx, args, key_id)
    left, reads = await ctx.poll(
        lambda: _passwords(ctx, args), lambda xs: all(p.get("keyId") != key_id for p in xs)
    )
    gone = all(p.get("keyId") != key_id for p in left)
    body = {
        "application_id": args["application_id"],
        "key_id": key_id,
        "removed": gone,
        "already_absent": already and gone,
        "reads": reads,
    }
    return ToolResult("success" if gone else "error", body)


async def _send_removal(ctx: ToolContext, args: Mapping[str, Any], key_id: str) -> bool:
    """Ask Graph to remove one password; True when it says there is no such key."""
    try:
        await ctx.client.post(_path(args, "/removePassword"), {"keyId": key_id}, idempotent=True)
    except GraphError as err:
        if err.status not in (400, 404) or err.code == "Request_ResourceNotFound":
            raise  # not an unknown key (an unknown application is a failure to report)
        return True  # an earlier send may have removed it: the read after decides
    return False


async def _remove_marked(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    """Remove every password of the application this job's marker names, then read until
    none is left. Only a name that ends with the exact marker counts: a name the agent chose
    cannot make another job's password, or one we did not create, look like this job's."""
    marker = job_marker(str(args["job_id"]), ctx.deployment)

    def ours(found: list[Doc]) -> list[str]:
        named = [p for p in found if str(p.get("displayName") or "").endswith(marker)]
        return [str(p.get("keyId")) for p in named if is_guid(p.get("keyId"))]

    found = ours(await _passwords(ctx, args))
    for key_id in found:
        await _send_removal(ctx, args, key_id)
    left, reads = await ctx.poll(lambda: _passwords(ctx, args), lambda xs: not ours(xs))
    remaining = ours(left)
    body = {
        "application_id": args["application_id"],
        "key_id": EVERY_MARKED_KEY,
        "removed_key_ids": found,
        "remaining_key_ids": remaining,
        "removed": not remaining,
        "reads": reads + 1,
    }
    return ToolResult("error" if remaining else "success", body)
