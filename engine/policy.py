"""WPC evaluation: IAM-style statements (default deny, explicit Deny wins) over
``tool:execute`` and ``model:invoke``, and the parsed :class:`Policy` a WPC payload becomes.

Pure and self-contained: building, signing and verifying WPCs live in ``engine.wpc``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine import catalog
from engine.envelope import VerifiedEnvelope, payload_hash
from engine.errors import VerificationError
from engine.tools import TargetKind, ToolRole, ToolSpec


def target_resources(spec: ToolSpec, arguments: Mapping[str, Any]) -> list[str]:
    return [resource(kind, str(value)) for kind, value in spec.target_values(arguments)]


def resource(kind: TargetKind, value: str) -> str:
    """The WPC resource string of one target, e.g. ``msgraph:principal/<id>``."""
    return f"msgraph:{kind.value}/{value}"


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(regex, flags=re.DOTALL)


def _glob(pattern: str, value: str) -> bool:
    """``*`` and ``?`` wildcards; everything else literal and case-sensitive."""
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _compiled(pattern).fullmatch(value) is not None


def _number(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?[0-9]{1,15}", text) else None


def _condition(op: str, expected: str, actual: str | None) -> bool | None:
    """True/False for a known operator (unknown context key is False); None if unsupported."""
    if actual is None:
        return False
    if op == "StringEquals":
        return actual == expected
    if op == "StringNotEquals":
        return actual != expected
    if op == "StringLike":
        return _glob(expected, actual)
    if op == "StringNotLike":
        return not _glob(expected, actual)
    if op == "Bool":
        return actual == expected
    if op in ("NumericEquals", "NumericLessThan", "NumericGreaterThan"):
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return {"NumericEquals": a == e, "NumericLessThan": a < e, "NumericGreaterThan": a > e}[op]
    return None


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, str]]

    def applies(self, action: str, context: Mapping[str, str]) -> bool:
        if not any(_glob(p, action) for p in self.actions):
            return False
        for op, entries in self.conditions.items():
            for key, expected in entries.items():
                result = _condition(op, expected, context.get(key))
                # An operator we do not implement never widens: Allow fails, Deny holds.
                if result is None:
                    result = self.effect == "Deny"
                if not result:
                    return False
        return True

    def covers(self, resource_name: str) -> bool:
        return any(_glob(p, resource_name) for p in self.resources)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # ALLOWED | EXPLICIT_DENY | NO_ALLOW | TARGET_OUT_OF_SCOPE
    detail: str = ""


@dataclass(frozen=True)
class Policy:
    """A parsed WPC payload (its hash is its identity)."""

    payload: Mapping[str, Any]
    policy_hash_b64u: str
    statements: tuple[Statement, ...]
    terms: Mapping[str, Any]
    issuer_did: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Policy:
        """Parse our subset of work_policy_contract.v2; SCHEMA_VALIDATION_FAILED otherwise."""
        try:
            return cls._parse(payload)
        except KeyError as exc:
            raise VerificationError("SCHEMA_VALIDATION_FAILED", f"not a WPC v2: no {exc}") from exc
        except (TypeError, AttributeError) as exc:
            # Python's own words ("'str' object has no attribute 'get'") help nobody here.
            raise VerificationError(
                "SCHEMA_VALIDATION_FAILED", "not a WPC v2: a member has the wrong type"
            ) from exc
        except ValueError as exc:
            raise VerificationError("SCHEMA_VALIDATION_FAILED", f"not a WPC v2: {exc}") from exc

    @classmethod
    def from_verified(cls, verified: VerifiedEnvelope) -> Policy:
        return cls.from_payload(verified.payload)

    @classmethod
    def _parse(cls, payload: Mapping[str, Any]) -> Policy:
        if payload["policy_version"] != "2" or not isinstance(payload["policy_id"], str):
            raise ValueError("policy_version must be 2")
        raw = payload["statements"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= 64:
            raise ValueError("statements must be a list of 1..64")
        statements = tuple(_parse_statement(s) for s in raw)
        terms = payload.get("metadata", {}).get("breakglass")
        if not isinstance(terms, Mapping):
            raise ValueError("metadata.breakglass is missing")
        issuer = payload["issuer_did"]
        if not isinstance(issuer, str) or not issuer.startswith("did:"):
            raise ValueError("issuer_did is not a DID")
        return cls(payload, payload_hash(payload), statements, terms, issuer)

    def evaluate(
        self, action: str, resources: Sequence[str], context: Mapping[str, str]
    ) -> Decision:
        """Default deny; explicit Deny wins; one Allow statement must cover every resource."""
        applicable = [s for s in self.statements if s.applies(action, context)]
        for statement in applicable:
            if statement.effect == "Deny" and (
                not resources or any(statement.covers(r) for r in resources)
            ):
                return Decision(False, "EXPLICIT_DENY", statement.sid)
        allows = [s for s in applicable if s.effect == "Allow"]
        if not allows:
            return Decision(False, "NO_ALLOW", action)
        for statement in allows:
            if all(statement.covers(r) for r in resources):
                return Decision(True, "ALLOWED", statement.sid)
        outside = [r for r in resources if not any(s.covers(r) for s in allows)]
        return Decision(False, "TARGET_OUT_OF_SCOPE", ", ".join(outside) or "target mix")

    def tool_call_decision(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> Decision:
        for kind, value in spec.target_values(arguments):
            if not isinstance(value, str):
                return Decision(False, "TARGET_OUT_OF_SCOPE", f"{kind.value} missing")
        return self.evaluate(
            "tool:execute", target_resources(spec, arguments), {"Tool:Name": spec.name}
        )

    def allows_model(self, provider: str, name: str) -> Decision:
        return self.evaluate(
            "model:invoke", ["*"], {"Model:Provider": provider, "Model:Name": name}
        )

    def tools_with_role(self, roles: Collection[ToolRole]) -> list[str]:
        """Tool names the WPC allows whose catalog role is in ``roles``."""
        names = []
        for statement in self.statements:
            name = statement.conditions.get("StringEquals", {}).get("Tool:Name")
            spec = catalog.TOOLS.get(name or "")
            if statement.effect == "Allow" and spec is not None and spec.role in roles:
                names.append(spec.name)
        return names

    @property
    def job_id(self) -> str:
        return str(self.terms["job_id"])

    @property
    def requested_minutes(self) -> int:
        return int(self.terms["timebox"]["requested_minutes"])

    @property
    def cst_max_ttl_seconds(self) -> int:
        return int(self.terms["timebox"]["cst_max_ttl_minutes"]) * 60


def _parse_statement(raw: Mapping[str, Any]) -> Statement:
    effect = raw["effect"]
    if effect not in ("Allow", "Deny"):
        raise ValueError("effect must be Allow or Deny")
    actions, resources = raw["actions"], raw["resources"]
    if not all(isinstance(x, str) for x in [*actions, *resources]) or not actions:
        raise ValueError("actions/resources must be non-empty string lists")
    conditions = raw.get("conditions", {})
    for entries in conditions.values():
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
            raise ValueError("condition values must be strings")
    return Statement(str(raw["sid"]), effect, tuple(actions), tuple(resources), conditions)
