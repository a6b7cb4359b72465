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
REVOKE_GROUP_SESSIONS = "breakglass.microsoft_graph.revoke_group_member_sessions"
ADD_APP_PASSWORD = "breakglass.microsoft_graph.add_application_password"
REMOVE_APP_PASSWORD = "breakglass.rollback.remove_application_password"
# After the window: what the elevated principal (or the excluded group's members) did. Reads,
# but of the rollback phase (role ROLLBACK): the engine calls them under its rollback token,
# and an agent is never offered them (it is offered the WPC's WRITE and READ tools).
READ_ACTIVITY = "breakglass.microsoft_graph.read_activity"
READ_EXCLUSION_ACTIVITY = "breakglass.microsoft_graph.read_exclusion_activity"

_T = TargetKind


def _tool(
    name: str,
    role: ToolRole,
    description: str,
    targets: dict[str, TargetKind],
    extra: dict[str, Any] | None = None,
    *,
    optional: tuple[str, ...] = (),
    window_bound: str | None = None,
) -> ToolSpec:
    """A tool whose target arguments are ids; ``extra`` arguments are required unless optional."""
    props: dict[str, Any] = {**{arg: _ID for arg in targets}, **(extra or {})}
    required = [arg for arg in props if arg not in optional]
    parameters = {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }
    return ToolSpec(name, role, description, targets, parameters, window_bound)


_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_ROLE_TARGETS = {
    "tenant_id": _T.TENANT,
    "principal_id": _T.PRINCIPAL,
    "role_definition_id": _T.ROLE,
}
_CA_TARGETS = {"tenant_id": _T.TENANT, "policy_id": _T.CA_POLICY, "group_id": _T.GROUP}
_JOB = {"job_id": _ID}
_APP_TARGETS = {"tenant_id": _T.TENANT, "application_id": _T.APPLICATION}
# The window read back: ISO 8601 UTC instants (the adapter parses them strictly).
_SPAN = {
    "since": {"type": "string", "minLength": 20, "maxLength": 32},
    "until": {"type": "string", "minLength": 20, "maxLength": 32},
}

TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        _tool(
            WRITE_ROLE,
            ToolRole.WRITE,
            "Activate an Entra directory role for a principal for a fixed duration "
            "(PIM adminAssign with its own expiry).",
            _ROLE_TARGETS,
            {
                "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                "justification": {"type": "string", "maxLength": 500},
                "ticket_number": {"type": "string", "maxLength": 100},
                **_JOB,
            },
            optional=("ticket_number",),
            window_bound="duration_minutes",
        ),
        _tool(
            READ_ROLE,
            ToolRole.READ,
            "Read whether the principal holds the role now (expect present or "
            "absent) and list every principal holding it.",
            _ROLE_TARGETS,
            {"expect": {"enum": ["present", "absent"]}},
        ),
        _tool(
            REMOVE_ROLE,
            ToolRole.ROLLBACK,
            "Remove the role assignment this job created (PIM adminRemove), then "
            "read until it is gone.",
            _ROLE_TARGETS,
            _JOB,
        ),
        _tool(
            EXCLUDE_GROUP,
            ToolRole.WRITE,
            "Snapshot a Conditional Access policy, then add the group to "
            "conditions.users.excludeGroups.",
            _CA_TARGETS,
            _JOB,
        ),
        _tool(
            RESTORE_CA,
            ToolRole.ROLLBACK,
            "Remove this job's exclusion from the current Conditional Access "
            "policy (never writing the snapshot back); report other changes as drift.",
            _CA_TARGETS,
            _JOB,
        ),
        _tool(
            READ_CA,
            ToolRole.READ,
            "Read the Conditional Access policy and check that the group is "
            "excluded (expect excluded) or that this job's exclusion is gone (expect restored).",
            _CA_TARGETS,
            {**_JOB, "expect": {"enum": ["excluded", "restored"]}},
        ),
        _tool(
            REVOKE_SESSIONS,
            ToolRole.ROLLBACK,
            "Revoke the principal's sign-in sessions (the role templates' "
            "containment kill step: it stops use of the grant while its removal must wait).",
            {"tenant_id": _T.TENANT, "principal_id": _T.PRINCIPAL},
        ),
        _tool(
            REVOKE_GROUP_SESSIONS,
            ToolRole.ROLLBACK,
            "Revoke the sign-in sessions of every user in the group (the Conditional Access "
            "exclusion's end step: sessions obtained while excluded do not outlive it).",
            {"tenant_id": _T.TENANT, "group_id": _T.GROUP},
        ),
        _tool(
            ADD_APP_PASSWORD,
            ToolRole.WRITE,
            "Add a password credential (client secret) to an application registration; "
            "the result names its keyId (the secret itself is never returned), and the end "
            "of the window removes it.",
            _APP_TARGETS,
            {**_JOB, "display_name": {"type": "string", "maxLength": 100}},
            optional=("display_name",),
        ),
        _tool(
            REMOVE_APP_PASSWORD,
            ToolRole.ROLLBACK,
            "Remove one password credential (by keyId) that this job added to an "
            "application registration, then read until it is gone.",
            _APP_TARGETS,
            {**_JOB, "key_id": _ID},
        ),
        _tool(
            READ_ACTIVITY,
            ToolRole.ROLLBACK,
            "Read the directory audit log (activities the principal initiated) and the "
            "sign-in log of the principal between since and until, and summarise them.",
            {"tenant_id": _T.TENANT, "principal_id": _T.PRINCIPAL},
            {**_JOB, **_SPAN},
        ),
        _tool(
            READ_EXCLUSION_ACTIVITY,
            ToolRole.ROLLBACK,
            "Read the sign-ins of the excluded group's members between since and until "
            "that the Conditional Access policy did not apply to, and summarise them.",
            _CA_TARGETS,
            {**_JOB, **_SPAN},
        ),
    )
}

# Which activity read follows each privileged write (engine.wpc plans it).
ACTIVITY_OF: dict[str, str] = {
    WRITE_ROLE: READ_ACTIVITY,
    EXCLUDE_GROUP: READ_EXCLUSION_ACTIVITY,
}
