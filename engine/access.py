"""Per-template access rules: target limits, step-up at approval, prerequisites.

Built once from configuration (``[templates.<name>]`` and ``[step_up]``, see
``breakglass.example.toml``) and carried in ``Rules.access``. ``None`` there means no
access rules are configured (every target may be asked for, no step-up, no prerequisite).
With rules configured, a template that has no table is refused: nothing is allowed by
omission.

Pure: the parser reads a mapping (already loaded TOML) and raises ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from engine.errors import ConfigError, ConfigProblems
from engine.limits import TargetLimits
from engine.tools import TargetKind

T = TypeVar("T")
NO_IDS: list[str] = []  # a fallback, only read
STEP_UP_REQUIRED = "required"
STEP_UP_OFF = "off"
PREREQ_NONE = "none"
PREREQ_PIM = "pim_request"
PREREQ_TICKET = "change_ticket"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
DEFAULT_HIGH_RISK_ROLES = frozenset(
    {
        GLOBAL_ADMINISTRATOR,
        "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",  # Privileged Authentication Administrator
        "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
    }
)
_LIST_KEYS = {
    "roles": TargetKind.ROLE,
    "principals": TargetKind.PRINCIPAL,
    "ca_policies": TargetKind.CA_POLICY,
    "groups": TargetKind.GROUP,
    "tenants": TargetKind.TENANT,
}
_TEMPLATE_KEYS = {
    *_LIST_KEYS,
    "principal_groups",
    "step_up",
    "prerequisite",
    "ticket_pattern",
    "revoke_sessions_at_end",
    "rotate_credentials",
}
ROTATABLE_KINDS = ("application_password",)  # engine.containment says what each kind means


@dataclass(frozen=True)
class TemplateAccess:
    """What one template may be asked for and what its approval needs."""

    limits: TargetLimits = field(default_factory=TargetLimits)
    step_up: str | None = None  # required | off | None: required for high-risk roles
    prerequisite: str = PREREQ_NONE
    ticket_pattern: str = ""  # for change_ticket: the whole id must match
    # Containment at the window's end (engine.containment): None = the template's default
    revoke_sessions_at_end: bool | None = None
    rotate_credentials: tuple[str, ...] = ()

    def needs_step_up(self, role: str | None, high_risk: frozenset[str]) -> bool:
        if self.step_up is not None:
            return self.step_up == STEP_UP_REQUIRED
        return role is not None and role in high_risk


@dataclass(frozen=True)
class StepUpRule:
    """The fresh sign-in an approval needs where step-up applies."""

    acr: str = "c1"  # the Entra authentication context the sign-in must satisfy
    max_age_seconds: int = 300  # how old auth_time may be when the approval is recorded


@dataclass(frozen=True)
class AccessRules:
    templates: Mapping[str, TemplateAccess] = field(default_factory=dict)
    high_risk_roles: frozenset[str] = DEFAULT_HIGH_RISK_ROLES
    step_up: StepUpRule = field(default_factory=StepUpRule)


def access_from_config(
    templates: Mapping[str, Any], step_up: Mapping[str, Any]
) -> AccessRules | None:
    """The access rules of ``[templates.*]`` and ``[step_up]``; None when neither is given."""
    if not templates and not step_up:
        return None
    found: list[str] = []  # every problem of every table, so `config check` lists them all
    parsed = {}
    for name, table in templates.items():
        try:
            parsed[str(name)] = _template(str(name), table)
        except ConfigProblems as err:
            found += err.problems
    try:
        rule, risky = _step_up_rules(step_up)
    except ConfigError as err:
        found.append(str(err))
    if found:
        raise ConfigProblems(found)
    return AccessRules(parsed, frozenset(risky), rule)


def _step_up_rules(step_up: Mapping[str, Any]) -> tuple[StepUpRule, list[str]]:
    where = "step_up"
    rule = StepUpRule(
        acr=_text(step_up, where, "authentication_context", StepUpRule.acr),
        max_age_seconds=_int(step_up, where, "max_age_seconds", StepUpRule.max_age_seconds),
    )
    if not re.fullmatch(r"c([1-9]|[1-9][0-9])", rule.acr):
        raise ConfigError("step_up.authentication_context must be an id c1..c99")
    high_risk = step_up.get("high_risk_roles")
    risky = (
        list(DEFAULT_HIGH_RISK_ROLES)
        if high_risk is None
        else _ids(step_up, where, "high_risk_roles")
    )
    return rule, risky


def _template(name: str, table: Any) -> TemplateAccess:
    """The table's rules, or ConfigProblems naming every key that is wrong."""
    where = f"templates.{name}"
    if not isinstance(table, Mapping):
        raise ConfigProblems([f"[{where}] must be a table"])
    found: list[str] = []

    def checked(read: Callable[[], T], fallback: T) -> T:
        try:
            return read()
        except ConfigError as err:
            found.append(str(err))
            return fallback

    unknown = set(table) - _TEMPLATE_KEYS
    if unknown:
        found.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    allowed = {
        kind: frozenset(checked(partial(_ids, table, where, key), NO_IDS))
        for key, kind in _LIST_KEYS.items()
    }
    limits = TargetLimits(
        allowed={kind: ids for kind, ids in allowed.items() if ids or _given(table, kind)},
        principal_groups=frozenset(
            checked(partial(_ids, table, where, "principal_groups"), NO_IDS)
        ),
    )
    step_up = checked(lambda: _choice(table, where, "step_up"), None)
    prerequisite = checked(lambda: _prerequisite(table, where), PREREQ_NONE)
    pattern = checked(lambda: _text(table, where, "ticket_pattern", ""), "")
    if prerequisite == PREREQ_TICKET:
        checked(lambda: _compile(where, pattern), None)
    revoke = checked(lambda: _flag(table, where, "revoke_sessions_at_end"), None)
    rotate = checked(partial(_rotations, table, where), NO_IDS)
    if found:
        raise ConfigProblems(found)
    return TemplateAccess(limits, step_up, prerequisite, pattern, revoke, tuple(rotate))


def _choice(table: Mapping[str, Any], where: str, key: str) -> str | None:
    value = table.get(key)
    if value not in (None, STEP_UP_REQUIRED, STEP_UP_OFF):
        raise ConfigError(f'{where}.{key} must be "required" or "off"')
    return value


def _prerequisite(table: Mapping[str, Any], where: str) -> str:
    value = _text(table, where, "prerequisite", PREREQ_NONE)
    if value not in (PREREQ_NONE, PREREQ_PIM, PREREQ_TICKET):
        raise ConfigError(f"{where}.prerequisite must be none, pim_request or change_ticket")
    return value


def _flag(table: Mapping[str, Any], where: str, key: str) -> bool | None:
    value = table.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be true or false")
    return value


def _rotations(table: Mapping[str, Any], where: str) -> list[str]:
    rotate = table.get("rotate_credentials", [])
    if not isinstance(rotate, list) or any(kind not in ROTATABLE_KINDS for kind in rotate):
        raise ConfigError(f"{where}.rotate_credentials must list only {', '.join(ROTATABLE_KINDS)}")
    return rotate


def _given(table: Mapping[str, Any], kind: TargetKind) -> bool:
    return any(k in table for k, v in _LIST_KEYS.items() if v == kind)


def _compile(where: str, pattern: str) -> re.Pattern[str]:
    if not pattern:
        raise ConfigError(f"{where}.ticket_pattern is required for prerequisite change_ticket")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}.ticket_pattern is not a regular expression: {exc}") from exc


def _ids(table: Mapping[str, Any], where: str, key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key} must be a list of ids")
    return [v.lower() if _looks_like_guid(v) else v for v in value]


def _looks_like_guid(value: str) -> bool:
    return re.fullmatch(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", value) is not None


def _text(table: Mapping[str, Any], where: str, key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string")
    return value


def _int(table: Mapping[str, Any], where: str, key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 30 <= value <= 3600:
        raise ConfigError(f"{where}.{key} must be a whole number of seconds from 30 to 3600")
    return value
