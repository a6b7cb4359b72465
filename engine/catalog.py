"""The privileged tools breakglass knows, described as data.

The Microsoft Graph adapter implements each of these by name; templates and rollback plans
refer to them; the gateway checks calls against them. Argument names here are the contract.
"""

from __future__ import annotations

from typing import Any

from engine.tools import TargetKind, ToolRole, ToolSpec

WRITE_ROLE = "breakglass.microsoft_graph.write_role_assignment"
READ_ROLE = "breakglass.microsoft_graph.read_role_assignment"
REMOVE_ROLE = "breakglass.rollback.remove_role_assignment"
EXCLUDE_GROUP = "breakglass.microsoft_graph.exclude_group_from_ca_policy"
RESTORE_CA = "breakglass.microsoft_graph.restore_ca_policy"
READ_CA = "breakglass.microsoft_graph.read_ca_policy"
REVOKE_SESSIONS = "breakglass.microsoft_graph.revoke_sign_in_sessions"

_T = TargetKind


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_ROLE_TARGETS = {
    "tenant_id": _T.TENANT,
    "principal_id": _T.PRINCIPAL,
    "role_definition_id": _T.ROLE,
}
_CA_TARGETS = {"tenant_id": _T.TENANT, "policy_id": _T.CA_POLICY, "group_id": _T.GROUP}
_ROLE_PROPS = {"tenant_id": _ID, "principal_id": _ID, "role_definition_id": _ID}
_CA_PROPS = {"tenant_id": _ID, "policy_id": _ID, "group_id": _ID}

TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            name=WRITE_ROLE,
            role=ToolRole.WRITE,
            description="Activate an Entra directory role for a principal for a fixed duration "
            "(PIM adminAssign with its own expiry).",
            targets=_ROLE_TARGETS,
            window_bound="duration_minutes",
            parameters=_schema(
                {
                    **_ROLE_PROPS,
                    "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                    "justification": {"type": "string", "maxLength": 500},
                    "ticket_number": {"type": "string", "maxLength": 100},
                    "job_id": _ID,
                },
                [*_ROLE_PROPS, "duration_minutes", "justification", "job_id"],
            ),
        ),
        ToolSpec(
            name=READ_ROLE,
            role=ToolRole.READ,
            description="Read whether the principal holds the role now (expect present or "
            "absent) and list every principal holding it.",
            targets=_ROLE_TARGETS,
            parameters=_schema(
                {**_ROLE_PROPS, "expect": {"enum": ["present", "absent"]}},
                [*_ROLE_PROPS, "expect"],
            ),
        ),
        ToolSpec(
            name=REMOVE_ROLE,
            role=ToolRole.ROLLBACK,
            description="Remove the role assignment this job created (PIM adminRemove), then "
            "read until it is gone.",
            targets=_ROLE_TARGETS,
            parameters=_schema({**_ROLE_PROPS, "job_id": _ID}, [*_ROLE_PROPS, "job_id"]),
        ),
        ToolSpec(
            name=EXCLUDE_GROUP,
            role=ToolRole.WRITE,
            description="Snapshot a Conditional Access policy, then add the group to "
            "conditions.users.excludeGroups.",
            targets=_CA_TARGETS,
            parameters=_schema({**_CA_PROPS, "job_id": _ID}, [*_CA_PROPS, "job_id"]),
        ),
        ToolSpec(
            name=RESTORE_CA,
            role=ToolRole.ROLLBACK,
            description="Remove this job's exclusion from the current Conditional Access "
            "policy (never writing the snapshot back); report other changes as drift.",
            targets=_CA_TARGETS,
            parameters=_schema({**_CA_PROPS, "job_id": _ID}, [*_CA_PROPS, "job_id"]),
        ),
        ToolSpec(
            name=READ_CA,
            role=ToolRole.READ,
            description="Read the Conditional Access policy and check that the group is "
            "excluded (expect excluded) or that this job's exclusion is gone (expect restored).",
            targets=_CA_TARGETS,
            parameters=_schema(
                {**_CA_PROPS, "job_id": _ID, "expect": {"enum": ["excluded", "restored"]}},
                [*_CA_PROPS, "job_id", "expect"],
            ),
        ),
        ToolSpec(
            name=REVOKE_SESSIONS,
            role=ToolRole.ROLLBACK,
            description="Revoke the principal's sign-in sessions (the role templates' "
            "containment kill step: it stops use of the grant while its removal must wait).",
            targets={"tenant_id": _T.TENANT, "principal_id": _T.PRINCIPAL},
            parameters=_schema(
                {"tenant_id": _ID, "principal_id": _ID}, ["tenant_id", "principal_id"]
            ),
        ),
    )
}
