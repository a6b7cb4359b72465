"""Live reads the access rules need before the engine plans a request (issue 17).

- Target limits by group (``principal_groups``): which of those groups the target principal
  is a member of, read from the tenant and passed as the request's ``memberships``.
- A request for a CA exclusion: which approvers are members of the group it would exclude
  (``Request.excluded_approvers``; they are neither asked nor counted).
- An approval of a CA exclusion: is the approver a member of the group it would exclude
  (``Approve.excluded_member``; the engine refuses a member, and an unread membership).
- ``prerequisite = "pim_request"``: the id (the request's ``prerequisite["id"]``, else its
  ticket field) is read from the tenant and judged by ``engine.prerequisites``; what was
  checked rides on the command into the WPC.

Anything that keeps a needed read from happening refuses the request (fail closed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.access import PREREQ_PIM, TemplateAccess
from engine.errors import AdapterError, CommandRefused, GraphError
from engine.grants import ALREADY_GRANTED
from engine.job import CA_EXCLUSION, Job
from engine.lifecycle import Approve, Request, Rules
from engine.lifecycle.gatekeeping import PREREQUISITE_MISSING
from engine.prerequisites import PREREQUISITE_UNCHECKED, judge_pim_request
from engine.targets import TENANT_UNAVAILABLE

PIM_TEMPLATE_TARGETS = ("principal_id", "role_definition_id")


async def preflight_access(command: Request, rules: Rules, tools: object) -> Request:
    """``command`` with the memberships and the PIM request its template's rules need, or
    CommandRefused; unchanged when the template needs neither."""
    access = rules.access.templates.get(command.template) if rules.access else None
    if access is None:
        return command
    command = await _with_memberships(command, access, tools)
    if access.prerequisite == PREREQ_PIM:
        command = await _with_pim_request(command, tools)
    return command


async def refuse_if_granted(command: Request, tools: object) -> None:
    """CommandRefused when the tenant already holds what ``command`` asks for: its write
    would fail, and its end would report (and contain) a grant it never made."""
    reader = getattr(tools, "grant_in_place", None)
    if reader is None:
        return
    try:
        held = await reader(command.template, command.targets)
    except AdapterError as err:
        raise CommandRefused(
            TENANT_UNAVAILABLE, "the grant's current state could not be read"
        ) from err
    if held:
        raise CommandRefused(ALREADY_GRANTED, "the tenant holds this grant already; nothing to do")


async def with_excluded_approvers(command: Request, rules: Rules, tools: object) -> Request:
    """``command`` naming the approvers who are members of the group it (a CA exclusion)
    would exclude: each of their approvals would be refused, so the engine counts the rest
    before anyone is asked. Unchanged for any other template, or without a reader. A tenant
    that cannot tell refuses the request (fail closed); the approval reads it again."""
    reader = getattr(tools, "check_member_groups", None)
    group = command.targets.get("group_id")
    if command.template != CA_EXCLUSION or reader is None or not group:
        return command
    members: set[str] = set()
    for principal in sorted(rules.approvers - {command.actor.principal}):
        member = await _member_of(reader, principal, group)
        if member is None:
            detail = "whether the approvers are members of the group could not be read"
            raise CommandRefused(TENANT_UNAVAILABLE, detail)
        if member:
            members.add(principal)
    return replace(command, excluded_approvers=frozenset(members))


async def with_approver_membership(job: Job, command: Approve, tools: object) -> Approve:
    """``command`` saying whether its approver is a member of the group ``job`` (a CA
    exclusion) would exclude; unchanged for any other job, or without a reader (a tool port
    with no directory). A tenant that cannot be asked leaves it unread (None)."""
    reader = getattr(tools, "check_member_groups", None)
    group = job.request.get("targets", {}).get("group_id")
    principal = command.actor.principal
    if job.request.get("template") != CA_EXCLUSION or reader is None or not principal:
        return command  # an unresolved approver is refused by the engine anyway
    return replace(command, excluded_member=await _member_of(reader, principal, group))


async def _member_of(reader: Any, principal: str, group: str) -> bool | None:
    """Is ``principal`` a (transitive) member of ``group``; None when the tenant cannot
    tell. A 404 is no user of this tenant, so a member of none of its groups."""
    try:
        return group in await reader(principal, [group])
    except GraphError as err:
        return False if err.status == 404 else None
    except AdapterError:
        return None


async def _with_memberships(command: Request, access: TemplateAccess, tools: object) -> Request:
    groups = sorted(access.limits.principal_groups)
    principal = command.targets.get("principal_id")
    reader = getattr(tools, "check_member_groups", None)
    if not groups or not principal or reader is None:
        return command  # without a reader, only listed principals are admitted
    try:
        found = await reader(principal, groups)
    except AdapterError as err:
        raise CommandRefused(TENANT_UNAVAILABLE, "group memberships could not be read") from err
    return replace(command, memberships=tuple(found))


async def _with_pim_request(command: Request, tools: object) -> Request:
    request_id = str((command.prerequisite or {}).get("id") or command.ticket).strip()
    if not request_id:
        raise CommandRefused(PREREQUISITE_MISSING, "this template needs a PIM request id")
    reader = getattr(tools, "read_pim_request", None)
    if reader is None:
        raise CommandRefused(PREREQUISITE_UNCHECKED, "this tenant cannot check PIM requests")
    principal, role = (command.targets.get(k, "") for k in PIM_TEMPLATE_TARGETS)
    try:
        doc = await reader(request_id)
    except AdapterError as err:
        raise CommandRefused(PREREQUISITE_UNCHECKED, "the tenant could not be asked") from err
    checked = judge_pim_request(doc, request_id, principal, role)
    return replace(command, prerequisite={"id": request_id, "verified": True, **checked})
