"""Preflight: what a person typed as a target, resolved against the tenant before approval.

A principal may be given as an object id or a userPrincipalName; a directory role or a group
as an object id (a role also by its template id) or its exact display name; a Conditional
Access policy only by its id. Every value is checked before any request is built (length,
control characters, quotes, shape), so nothing typed can reach a URL or an OData filter
unchecked; filter literals are escaped all the same. Refusals are ``TargetRejected`` and name
the target, never echo its value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from adapters.graph.arguments import is_guid
from adapters.graph.context import ToolContext
from engine.errors import GraphError
from engine.targets import (
    TARGET_AMBIGUOUS,
    TARGET_INVALID,
    TARGET_NOT_FOUND,
    TENANT_UNAVAILABLE,
    ResolvedTarget,
    TargetRejected,
)

MAX_LENGTH = 256
ROLE_DEFINITIONS = "/roleManagement/directory/roleDefinitions"
GROUPS = "/groups"
POLICIES = "/identity/conditionalAccess/policies"
# A userPrincipalName: local part, "@", a domain; no quotes, no "..", nothing a URL would parse.
_UPN = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Display names of roles and groups: letters, digits, spaces and common punctuation only.
_NAME = re.compile(r"[\w .,()&/+#:-]+")
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

Doc = dict[str, Any]


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with each single quote doubled."""
    return "'" + value.replace("'", "''") + "'"


async def resolve_targets(
    ctx: ToolContext, targets: Mapping[str, str]
) -> dict[str, ResolvedTarget]:
    """Each target resolved, in order; the first that fails raises ``TargetRejected``."""
    resolvers: dict[str, Callable[[ToolContext, str], Awaitable[tuple[str, str]]]] = {
        "tenant_id": _tenant,
        "principal_id": _principal,
        "role_definition_id": _role,
        "group_id": _group,
        "policy_id": _policy,
    }
    resolved = {}
    for key, given in targets.items():
        resolver = resolvers.get(key)
        if resolver is None:
            raise TargetRejected(TARGET_INVALID, f"{key[:40]!r} is not a target", key=key)
        text = _checked(key, given)
        try:
            object_id, name = await resolver(ctx, text)
        except GraphError as err:
            raise _rejection(key, err) from err
        resolved[key] = ResolvedTarget(key, given, object_id, name)
    return resolved


def _checked(key: str, given: object) -> str:
    if not isinstance(given, str) or not given.strip():
        raise TargetRejected(TARGET_INVALID, f"{key} is empty", key=key)
    if len(given) > MAX_LENGTH:
        raise TargetRejected(TARGET_INVALID, f"{key} is longer than {MAX_LENGTH}", key=key)
    if any(unicodedata.category(c) in _UNPRINTABLE for c in given):
        raise TargetRejected(TARGET_INVALID, f"{key} contains control characters", key=key)
    return given.strip()


async def _tenant(ctx: ToolContext, given: str) -> tuple[str, str]:
    if not is_guid(given) or given.lower() != ctx.tenant_id.lower():
        raise TargetRejected(
            TARGET_INVALID, "tenant_id is not the tenant this service serves", key="tenant_id"
        )
    return ctx.tenant_id, ctx.tenant_id


async def _principal(ctx: ToolContext, given: str) -> tuple[str, str]:
    if not (is_guid(given) or _UPN.fullmatch(given)):
        raise TargetRejected(
            TARGET_INVALID, "principal_id must be an object id or a UPN", key="principal_id"
        )
    user = (await ctx.client.get(f"/users/{quote(given, safe='@')}")).body
    name = user.get("displayName") or user.get("userPrincipalName") or ""
    return str(user["id"]), str(name)


async def _role(ctx: ToolContext, given: str) -> tuple[str, str]:
    if is_guid(given):
        role = (await ctx.client.get(f"{ROLE_DEFINITIONS}/{given}")).body
        return str(role["id"]), str(role.get("displayName") or "")
    return await _by_name(ctx, ROLE_DEFINITIONS, given, "role_definition_id")


async def _group(ctx: ToolContext, given: str) -> tuple[str, str]:
    if is_guid(given):
        group = (await ctx.client.get(f"{GROUPS}/{given}")).body
        return str(group["id"]), str(group.get("displayName") or "")
    return await _by_name(ctx, GROUPS, given, "group_id")


async def _policy(ctx: ToolContext, given: str) -> tuple[str, str]:
    if not is_guid(given):
        raise TargetRejected(TARGET_INVALID, "policy_id must be a policy id", key="policy_id")
    policy = (await ctx.client.get(f"{POLICIES}/{given}")).body
    return str(policy["id"]), str(policy.get("displayName") or "")


async def _by_name(ctx: ToolContext, path: str, given: str, key: str) -> tuple[str, str]:
    if not _NAME.fullmatch(given):
        raise TargetRejected(TARGET_INVALID, f"{key} must be an id or a plain name", key=key)
    found = await ctx.client.get_all(path, {"$filter": f"displayName eq {odata_string(given)}"})
    # Graph compares without regard to case; keep only exact (case-insensitive) matches.
    same = [d for d in found if str(d.get("displayName", "")).casefold() == given.casefold()]
    if not same:
        raise TargetRejected(TARGET_NOT_FOUND, f"no {_noun(key)} has that name", key=key)
    if len(same) > 1:
        raise TargetRejected(
            TARGET_AMBIGUOUS, f"{len(same)} {_noun(key)}s have that name; give the id", key=key
        )
    return str(same[0]["id"]), str(same[0].get("displayName") or "")


def _rejection(key: str, err: GraphError) -> TargetRejected:
    if err.status == 404:
        return TargetRejected(TARGET_NOT_FOUND, f"the tenant has no such {_noun(key)}", key=key)
    if err.status == 400:
        return TargetRejected(TARGET_INVALID, f"the tenant refused {key} ({err.code})", key=key)
    return TargetRejected(
        TENANT_UNAVAILABLE, f"the tenant could not be asked about {key} ({err.code})", key=key
    )


def _noun(key: str) -> str:
    return {
        "principal_id": "user",
        "role_definition_id": "directory role",
        "group_id": "group",
        "policy_id": "Conditional Access policy",
    }.get(key, "object")
