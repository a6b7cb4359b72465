"""Target limits: which roles, principals, policies and groups a template may be asked for.

The seed's ``target_constraints``. Each template may be given an allow-list per target kind
(``allowed[kind]``; ``"*"`` allows any id of that kind). A principal is also admitted when it
is a member of one of ``principal_groups`` (the caller reads the memberships from the tenant
before the request reaches the engine). A target kind with no list is refused (fail closed),
except the tenant, which the service's own configuration already pins.

Pure: the check takes ids (resolved before), never names, and reads nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from engine.canonical import jcs
from engine.encoding import sha256_b64u
from engine.errors import CommandRefused
from engine.tools import TargetKind, ToolSpec

ANY = "*"
TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"
MAX_LISTED = 5  # allowed ids named in a refusal; the rest are counted


class TargetNotAllowed(CommandRefused):
    """A request names targets outside its template's limits; ``failed`` lists each one
    as ``"<target key>=<value>"`` (all of them, not only the first)."""

    def __init__(self, failed: tuple[str, ...], detail: str) -> None:
        super().__init__(TARGET_NOT_ALLOWED, detail)
        self.failed = failed


@dataclass(frozen=True)
class TargetLimits:
    """The allow-lists of one template, by target kind."""

    allowed: Mapping[TargetKind, frozenset[str]] = field(default_factory=dict)
    principal_groups: frozenset[str] = frozenset()

    def digest(self) -> str:
        """A hash of the limits in force (recorded in the WPC: which version of them applied)."""
        doc = {
            "allowed": {kind.value: sorted(ids) for kind, ids in sorted(self.allowed.items())},
            "principal_groups": sorted(self.principal_groups),
        }
        return sha256_b64u(jcs(doc))


def check_targets(
    limits: TargetLimits,
    spec: ToolSpec,
    targets: Mapping[str, str],
    memberships: Collection[str] = (),
) -> dict[str, str]:
    """How each target of ``spec`` was admitted (``listed``, ``any`` or ``group:<id>``),
    or TargetNotAllowed listing every target that is outside the limits.

    Does NOT check that the ids exist or that ``memberships`` are true: the caller resolved
    the targets and read the principal's groups from the tenant.
    """
    admitted: dict[str, str] = {}
    failed: list[str] = []
    reasons: list[str] = []
    for arg, kind in spec.targets.items():
        value = targets.get(arg, "")
        how = _admit(limits, kind, value, memberships)
        if how is None:
            failed.append(f"{arg}={value}")
            reasons.append(_why(limits, arg, kind, value))
        else:
            admitted[arg] = how
    if failed:
        raise TargetNotAllowed(tuple(failed), "; ".join(reasons))
    return admitted


def _admit(
    limits: TargetLimits, kind: TargetKind, value: str, memberships: Collection[str]
) -> str | None:
    allowed = limits.allowed.get(kind)
    if allowed is None and kind == TargetKind.TENANT:
        return "service_tenant"
    allowed = allowed or frozenset()
    if value in allowed or value.lower() in allowed:
        return "listed"
    if ANY in allowed:
        return "any"
    if kind == TargetKind.PRINCIPAL:
        for group in sorted(limits.principal_groups & set(memberships)):
            return f"group:{group}"
    return None


def _why(limits: TargetLimits, arg: str, kind: TargetKind, value: str) -> str:
    allowed = sorted(limits.allowed.get(kind, frozenset()))
    if kind == TargetKind.PRINCIPAL and limits.principal_groups:
        allowed += [f"members of {g}" for g in sorted(limits.principal_groups)]
    if not allowed:
        return f"{arg} {value} is not allowed: this template allows no {kind.value} at all"
    shown = ", ".join(allowed[:MAX_LISTED])
    more = f" and {len(allowed) - MAX_LISTED} more" if len(allowed) > MAX_LISTED else ""
    return f"{arg} {value} is not allowed (allowed: {shown}{more})"
