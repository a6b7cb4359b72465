"""Tool descriptions: what a tool is called, what it may be used for, which arguments are targets.

A tool declares its targets (which argument names a tenant, a principal, a role, a group or a
Conditional Access policy), so the gateway checks any tool the same way and a new tool never
needs a special case in the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TargetKind(StrEnum):
    TENANT = "tenant"
    PRINCIPAL = "principal"
    ROLE = "role"
    GROUP = "group"
    CA_POLICY = "ca_policy"
    APPLICATION = "application"  # an app registration (its object id)


class ToolRole(StrEnum):
    """What a tool is for; the rollback-only token may call only READ and ROLLBACK tools."""

    WRITE = "write"
    READ = "read"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the gateway and the model see it.

    ``targets`` maps argument names to the kind of target they name. ``window_bound`` names an
    integer argument (minutes) that may not exceed the token's remaining lifetime.
    ``parameters`` is the JSON Schema offered to a model (OpenAI function ``parameters``).
    """

    name: str
    role: ToolRole
    description: str
    targets: Mapping[str, TargetKind]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    window_bound: str | None = None

    def target_values(self, arguments: Mapping[str, Any]) -> list[tuple[TargetKind, object]]:
        """The (kind, value) pairs this call names, in declaration order; missing ones as None."""
        return [(kind, arguments.get(arg)) for arg, kind in self.targets.items()]


# A write whose grant the tenant ends by itself (a PIM schedule) says when in its body: RFC
# 3339 UTC, at the latest. The job keeps it (``Job.grant_ends_at``) to say it when it escalates.
GRANT_ENDS_AT = "grant_ends_at"


@dataclass(frozen=True)
class ToolResult:
    """What a tool returned: ``status`` success/error and a JSON body (hashed into receipts).

    Verification reads put ``verified: bool`` in ``body``; a write whose grant ends by
    itself, ``GRANT_ENDS_AT``.
    """

    status: str
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "success"
