"""Prerequisites: an external approval a template needs before its plan may be approved.

A PIM request id (Graph ``roleAssignmentScheduleRequests/{id}``) is read live by the caller
through ``PimRequests``; :func:`judge_pim_request` decides, purely, whether the request it
read is an approved one for the very principal and role of the plan, and returns what was
checked (kept in the WPC, so in the bundle). A change ticket is only matched against the
configured pattern (``engine.lifecycle.gatekeeping``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine.errors import CommandRefused

PREREQUISITE_INVALID = "PREREQUISITE_INVALID"
PREREQUISITE_UNCHECKED = "PREREQUISITE_UNCHECKED"
APPROVED_STATUSES = frozenset({"approved", "provisioned"})


class PimRequests(Protocol):
    async def read_pim_request(self, request_id: str) -> Mapping[str, Any] | None:
        """The role assignment schedule request as Graph returns it; None if there is none.
        Raises AdapterError when the tenant cannot answer."""
        ...


def judge_pim_request(
    doc: Mapping[str, Any] | None, request_id: str, principal: str, role: str
) -> dict[str, str]:
    """What was checked, or CommandRefused(PREREQUISITE_INVALID) naming every mismatch.

    Does NOT read anything: ``doc`` is what the tenant answered for ``request_id``.
    """
    if doc is None:
        raise CommandRefused(PREREQUISITE_INVALID, f"no PIM request {request_id[:64]}")
    status = str(doc.get("status", ""))
    found = {
        "status": status,
        "principal_id": str(doc.get("principalId", "")).lower(),
        "role_definition_id": str(doc.get("roleDefinitionId", "")).lower(),
    }
    failed = []
    if status.lower() not in APPROVED_STATUSES:
        failed.append(f"status is {status or 'missing'}, not Approved or Provisioned")
    if found["principal_id"] != principal.lower():
        failed.append("it is for another principal")
    if found["role_definition_id"] != role.lower():
        failed.append("it is for another role")
    if failed:
        raise CommandRefused(
            PREREQUISITE_INVALID, f"PIM request {request_id[:64]}: " + "; ".join(failed)
        )
    return found
