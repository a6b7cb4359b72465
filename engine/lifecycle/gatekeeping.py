"""What a request must satisfy before anyone is asked, and what its approvals will need:
target limits, prerequisites and step-up, decided from ``Rules.access`` at request time and
recorded in the WPC (``metadata.breakglass.access``) so the plan says what applied."""

from __future__ import annotations

import re
from typing import Any

from engine import catalog
from engine.access import PREREQ_NONE, PREREQ_PIM, PREREQ_TICKET, AccessRules, TemplateAccess
from engine.lifecycle.commands import Ctx, Request, refuse
from engine.limits import TARGET_NOT_ALLOWED, check_targets
from engine.wpc import TEMPLATES

PREREQUISITE_MISSING = "PREREQUISITE_MISSING"
PREREQUISITE_INVALID = "PREREQUISITE_INVALID"


def access_terms(command: Request, ctx: Ctx) -> dict[str, Any] | None:
    """The access record of this request for its WPC, or CommandRefused (nothing asked yet).

    Does NOT check a PIM request live: ``bot/`` does that before submitting and passes
    what it found in ``command.prerequisite``; this only insists it was done. The id is
    ``command.prerequisite["id"]``, or else the request's ticket field.
    """
    rules = ctx.rules.access
    if rules is None:
        return None
    template = TEMPLATES.get(command.template)
    if template is None:
        return None  # the plan builder refuses an unknown template with its own reason
    access = rules.templates.get(command.template)
    if access is None:
        raise refuse(TARGET_NOT_ALLOWED, f"template {command.template} is not enabled here")
    spec = catalog.TOOLS[template.write_tool]
    admitted = check_targets(access.limits, spec, command.targets, command.memberships)
    terms: dict[str, Any] = {
        "limits": {"admitted": admitted, "limits_hash_b64u": access.limits.digest()}
    }
    prerequisite = _prerequisite(access, command)
    if prerequisite is not None:
        terms["prerequisite"] = prerequisite
    role = command.targets.get("role_definition_id")
    if access.needs_step_up(role.lower() if role else None, rules.high_risk_roles):
        terms["step_up"] = _step_up_terms(rules)
    return terms


def _step_up_terms(rules: AccessRules) -> dict[str, Any]:
    return {"acr": rules.step_up.acr, "max_age_seconds": rules.step_up.max_age_seconds}


def _prerequisite(access: TemplateAccess, command: Request) -> dict[str, Any] | None:
    if access.prerequisite == PREREQ_NONE:
        return None
    given = command.prerequisite or {"id": command.ticket}  # the ticket field carries the id
    if not given.get("id"):
        raise refuse(PREREQUISITE_MISSING, f"this template needs a {access.prerequisite} id")
    ref = str(given["id"])[:128]
    if access.prerequisite == PREREQ_TICKET:
        if not re.fullmatch(access.ticket_pattern, ref):
            raise refuse(PREREQUISITE_INVALID, "the change ticket does not match the pattern")
        return {"kind": PREREQ_TICKET, "id": ref, "checked": "pattern"}
    if access.prerequisite == PREREQ_PIM and given.get("verified") is not True:
        raise refuse(PREREQUISITE_INVALID, "the PIM request was not confirmed by the tenant")
    checked = {k: str(v)[:128] for k, v in given.items() if k not in ("id", "verified")}
    return {"kind": PREREQ_PIM, "id": ref, "checked": dict(sorted(checked.items()))}
