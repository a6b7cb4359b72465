"""Target resolution: what a person typed, checked against the tenant before anyone approves.

A request names its targets as people type them (a UPN, a role's display name, a group's
name, a policy id). Before approvers are asked, a ``TargetResolver`` turns each into the
object it denotes (id and display name) or refuses the request with a ``TargetRejected``
whose ``reason`` says why. Approvers then approve ids and names they can read.

Pure: no I/O here; the Microsoft Graph adapter implements the port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from engine.errors import CommandRefused

TARGET_KEYS: frozenset[str] = frozenset(
    {"principal_id", "role_definition_id", "policy_id", "group_id", "tenant_id"}
)
"""The request target keys a resolver understands."""

TARGET_NOT_FOUND = "TARGET_NOT_FOUND"
TARGET_AMBIGUOUS = "TARGET_AMBIGUOUS"
TARGET_INVALID = "TARGET_INVALID"
TENANT_UNAVAILABLE = "TENANT_UNAVAILABLE"

REASONS: frozenset[str] = frozenset(
    {TARGET_NOT_FOUND, TARGET_AMBIGUOUS, TARGET_INVALID, TENANT_UNAVAILABLE}
)


@dataclass(frozen=True)
class ResolvedTarget:
    """One target as the tenant knows it.

    ``key`` is the request target key (``principal_id``, ``role_definition_id``,
    ``policy_id``, ``group_id`` or ``tenant_id``); ``given`` is what was typed;
    ``object_id`` and ``display_name`` are what the tenant answered.
    """

    key: str
    given: str
    object_id: str
    display_name: str


class TargetRejected(CommandRefused):
    """A target could not be resolved; ``reason`` is one of :data:`REASONS`.

    ``key`` names the target that was refused (empty when the refusal is not about one).
    """

    def __init__(self, reason: str, detail: str = "", *, key: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown target rejection reason {reason!r}")
        super().__init__(reason, detail)
        self.key = key


class TargetResolver(Protocol):
    """Resolves a request's targets against the tenant, or raises ``TargetRejected``."""

    async def resolve_targets(
        self, template: str, targets: Mapping[str, str]
    ) -> Mapping[str, ResolvedTarget]:
        """Map each target key of ``targets`` to what it denotes in the tenant."""
        ...
