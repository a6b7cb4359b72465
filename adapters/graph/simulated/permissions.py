"""The app's Microsoft Graph permissions, as far as the simulated tenant models them.

An administrator may remove an application permission (an app role of Microsoft Graph) from
the app; Graph then refuses the requests that needed it with 403
``Authorization_RequestDenied``, "Insufficient privileges to complete the operation." An
app-only access token carries the permissions granted when it was issued (its ``roles``
claim), so a removal, and a restore, reach the app only with its next token: each simulated
token keeps the set of permissions that were removed when it was issued (``core.SimCore``).

Only the permissions of the breakglass tools' writes (docs/graph.md section 2) are modelled;
every other request is allowed as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.graph.simulated.errors import SimError

GRAPH = "/v1.0"


@dataclass(frozen=True)
class Needs:
    """Requests with this method (any, when None) whose path starts with ``prefix`` and
    ends with ``suffix``."""

    method: str | None
    prefix: str
    suffix: str = ""

    def matches(self, method: str, path: str) -> bool:
        return (
            (self.method is None or self.method == method)
            and path.startswith(self.prefix)
            and path.endswith(self.suffix)
        )


# ReadWrite includes Read: the schedule reads fail too when it is the permission removed.
MODELLED: dict[str, Needs] = {
    "RoleAssignmentSchedule.ReadWrite.Directory": Needs(
        None, f"{GRAPH}/roleManagement/directory/roleAssignmentSchedule"
    ),
    "Policy.ReadWrite.ConditionalAccess": Needs(
        "PATCH", f"{GRAPH}/identity/conditionalAccess/policies/"
    ),
    "User.RevokeSessions.All": Needs("POST", f"{GRAPH}/users/", "/revokeSignInSessions"),
}


def known(name: str) -> str:
    """``name``, if it is a permission the simulated tenant models (else ValueError)."""
    if name not in MODELLED:
        raise ValueError(f"permission {name!r} is not modelled: one of {sorted(MODELLED)}")
    return name


def check(lacking: frozenset[str], method: str, path: str) -> None:
    """403 when the token lacks a permission this request needs."""
    if any(MODELLED[name].matches(method, path) for name in lacking):
        raise SimError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
