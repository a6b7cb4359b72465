"""What the model-based test types into the request form and who clicks.

Each list starts with its ordinary values, so Hypothesis shrinks toward them and a minimal
failing example names only the hostile value that matters.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from bot.app import SIMULATED_SEED
from tests.integration.invariant.world import PEOPLE

TENANT = str(SIMULATED_SEED["tenantId"])
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # someone else's directory
UNKNOWN_GUID = "00000000-0000-4000-8000-00000000beef"  # well formed, names nothing here
ROLES = {r["displayName"]: r["id"] for r in SIMULATED_SEED["roles"]}
GROUPS = [g["id"] for g in SIMULATED_SEED["groups"]]
POLICIES = [p["id"] for p in SIMULATED_SEED["conditionalAccessPolicies"]]
UPN = "alice@breakglass-sim.onmicrosoft.com"

HOSTILE_IDS = [
    "not-a-guid",
    UNKNOWN_GUID,
    "a" * 129,  # longer than any id
    "a" * 4000,
    PEOPLE["alice"] + "\n",  # a trailing newline
    "al\x00ice",
    "al\tice",
    "x' or 1 eq 1 or 'x",  # an OData filter breakout
    "../../users",
]

# Who may act: the requester, approvers, a bystander, an identity mapping to two people, and
# one mapping to nobody.
ACTORS = [
    "console:alice",
    "console:bob",
    "console:carol",
    "console:dave",
    "console:erin",
    "console:twin",
    "console:stranger",
]

# Ordinary values for each field; the first of each list is the one shrinking prefers.
VALID: dict[str, list[str]] = {
    "tenant_id": [TENANT],
    "principal_id": [PEOPLE["dave"], PEOPLE["alice"], PEOPLE["erin"]],
    "role_definition_id": [
        ROLES["User Administrator"],
        ROLES["Helpdesk Administrator"],
        ROLES["Global Administrator"],  # erin holds it already
    ],
    "policy_id": POLICIES,
    "group_id": GROUPS,  # the last one is excluded from the MFA policy already
}
# What people (and attackers) type instead.
HOSTILE: dict[str, list[str]] = {
    "tenant_id": [OTHER_TENANT, TENANT.upper(), *HOSTILE_IDS],
    "principal_id": [UPN, *HOSTILE_IDS],
    "role_definition_id": ["Global Administrator", *HOSTILE_IDS],
    "policy_id": ["Require MFA for all users", *HOSTILE_IDS],
    "group_id": ["Break-glass CA exclusion", *HOSTILE_IDS],
}
TARGETS = {
    "entra-role": ("tenant_id", "principal_id", "role_definition_id"),
    "ca-exclusion": ("tenant_id", "policy_id", "group_id"),
}
minutes = st.sampled_from([30, 5, 1, 60])
bad_minutes = st.sampled_from([0, 61, 240, -5])
actors = st.sampled_from(ACTORS)


@dataclass(frozen=True)
class Form:
    """One filled-in request form."""

    template: str
    targets: dict[str, str]
    minutes: int


@st.composite
def valid_forms(draw: st.DrawFn, template: str | None = None) -> Form:
    name = template or draw(st.sampled_from(sorted(TARGETS, reverse=True)))
    targets = {arg: draw(st.sampled_from(VALID[arg])) for arg in TARGETS[name]}
    return Form(name, targets, draw(minutes))


@st.composite
def hostile_forms(draw: st.DrawFn) -> Form:
    """A valid form with one field replaced by something a person or an attacker typed."""
    form = draw(valid_forms())
    field_name = draw(st.sampled_from([*TARGETS[form.template], "minutes"]))
    if field_name == "minutes":
        return Form(form.template, form.targets, draw(bad_minutes))
    value = draw(st.sampled_from(HOSTILE[field_name]))
    return Form(form.template, form.targets | {field_name: value}, form.minutes)


forms = st.one_of(valid_forms(), hostile_forms())

# Tenant faults: (kind, method, path fragment). "" matches every Graph request.
FAULT_KINDS = ["unavailable", "throttle", "gateway_timeout", "drop"]
FAULT_TARGETS = [
    ("POST", "roleAssignmentScheduleRequests"),
    ("GET", "roleAssignmentScheduleInstances"),
    ("GET", "roleAssignmentScheduleRequests"),
    ("PATCH", "conditionalAccess"),
    ("GET", "conditionalAccess"),
    (None, ""),
]
