"""Checks a request's PIM prerequisite live, before the engine plans it (issue 17).

Only where the template requires ``prerequisite = "pim_request"``: the id (the request's
``prerequisite["id"]``, else its ticket field) is read from the tenant and judged by
``engine.prerequisites``; what was checked rides on the command into the WPC. Anything
that keeps the check from happening refuses the request (fail closed).
"""

from __future__ import annotations

from dataclasses import replace

from engine.access import PREREQ_PIM
from engine.errors import AdapterError, CommandRefused
from engine.lifecycle import Request, Rules
from engine.lifecycle.gatekeeping import PREREQUISITE_MISSING
from engine.prerequisites import PREREQUISITE_UNCHECKED, judge_pim_request

PIM_TEMPLATE_TARGETS = ("principal_id", "role_definition_id")


async def confirm_prerequisite(command: Request, rules: Rules, tools: object) -> Request:
    """``command`` with its live-checked PIM request, or CommandRefused; unchanged when the
    template needs no PIM request."""
    access = rules.access.templates.get(command.template) if rules.access else None
    if access is None or access.prerequisite != PREREQ_PIM:
        return command
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
