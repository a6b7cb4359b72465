"""Work Policy Contracts: break-glass templates, evaluation, signing and verification.

A WPC is a ``work_policy_contract.v2`` payload: IAM-style statements (default deny, explicit
Deny wins) over ``tool:execute`` and ``model:invoke``, plus the break-glass terms under the
hash-bound ``metadata.breakglass``. ``policy_hash_b64u = sha256(JCS(payload))``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine import catalog
from engine.canonical import jcs
from engine.did import Signer
from engine.envelope import (
    VerifiedEnvelope,
    payload_hash,
    sign_envelope,
    sorted_json,
    verify_envelope,
)
from engine.errors import TemplateError, TooLarge, VerificationError
from engine.tools import TargetKind, ToolRole, ToolSpec

ENVELOPE_TYPE = "work_policy_contract"
MAX_POLICY_BYTES = 64 * 1024
KILL_TRIGGERS = ("approval_revoked", "timebox_expired", "unexpected_target_detected")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_DENIED_TOOL_PATTERNS = ("*shell*", "*exec*", "*sudo*", "*elevat*", "*eval*")


@dataclass(frozen=True)
class Template:
    """A break-glass action: which targets it needs and which tools do, check and undo it."""

    name: str
    title: str
    target_args: tuple[str, ...]
    write_tool: str
    read_tool: str
    expect_after_action: str
    expect_after_rollback: str
    max_minutes: int = 60


TEMPLATES: dict[str, Template] = {
    "entra-role": Template(
        name="entra-role",
        title="Activate Entra directory role",
        target_args=("tenant_id", "principal_id", "role_definition_id"),
        write_tool=catalog.WRITE_ROLE,
        read_tool=catalog.READ_ROLE,
        expect_after_action="present",
        expect_after_rollback="absent",
    ),
    "ca-exclusion": Template(
        name="ca-exclusion",
        title="Exclude group from Conditional Access policy",
        target_args=("tenant_id", "policy_id", "group_id"),
        write_tool=catalog.EXCLUDE_GROUP,
        read_tool=catalog.READ_CA,
        expect_after_action="excluded",
        expect_after_rollback="restored",
    ),
}

# The mechanical inverse of each privileged write; a write without one is not eligible.
ROLLBACK_OF: dict[str, str] = {
    catalog.WRITE_ROLE: catalog.REMOVE_ROLE,
    catalog.EXCLUDE_GROUP: catalog.RESTORE_CA,
}


@dataclass(frozen=True)
class PlanRequest:
    """What a requester asked for, before it becomes a policy."""

    template: str
    targets: Mapping[str, str]
    minutes: int
    requester: str
    justification: str
    ticket: str
    job_id: str


@dataclass(frozen=True)
class ModelAllowance:
    provider: str
    name: str


def _check_request(request: PlanRequest, template: Template, max_minutes: int) -> None:
    for arg in template.target_args:
        value = request.targets.get(arg)
        if not isinstance(value, str) or not _ID.match(value):
            raise TemplateError(f"target {arg} is missing or not a plain id")
    extra = set(request.targets) - set(template.target_args)
    if extra:
        raise TemplateError(f"unexpected targets: {', '.join(sorted(extra))}")
    if isinstance(request.minutes, bool) or not isinstance(request.minutes, int):
        raise TemplateError("duration must be a whole number of minutes")
    if not 1 <= request.minutes <= max_minutes:
        raise TemplateError(f"duration must be between 1 and {max_minutes} minutes")
    for name, limit in (("justification", 500), ("ticket", 100), ("requester", 128)):
        text = getattr(request, name)
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise TemplateError(f"{name} is required and at most {limit} characters")
    if not _ID.match(request.job_id):
        raise TemplateError("job id is not a plain id")


def _resources(spec: ToolSpec, arguments: Mapping[str, Any]) -> list[str]:
    return [resource(kind, str(value)) for kind, value in spec.target_values(arguments)]


def resource(kind: TargetKind, value: str) -> str:
    """The WPC resource string of one target, e.g. ``msgraph:principal/<id>``."""
    return f"msgraph:{kind.value}/{value}"


def _allow(sid: str, call: Mapping[str, Any]) -> dict[str, Any]:
    spec = catalog.TOOLS[call["tool"]]
    return {
        "sid": sid,
        "effect": "Allow",
        "actions": ["tool:execute"],
        "resources": _resources(spec, call["arguments"]),
        "conditions": {"StringEquals": {"Tool:Name": spec.name}},
    }


def _deny_statements() -> list[dict[str, Any]]:
    denies = [
        {
            "sid": f"DenyTool{index}",
            "effect": "Deny",
            "actions": ["tool:execute"],
            "resources": ["*"],
            "conditions": {"StringLike": {"Tool:Name": pattern}},
        }
        for index, pattern in enumerate(_DENIED_TOOL_PATTERNS, start=1)
    ]
    denies.append(
        {
            "sid": "DenySideEffects",
            "effect": "Deny",
            "actions": ["side_effect:*"],
            "resources": ["*"],
        }
    )
    return denies


def plan_calls(template: Template, request: PlanRequest) -> dict[str, Any]:
    """The action, its verification read, the rollback steps and the rollback verification."""
    rollback_tool = ROLLBACK_OF.get(template.write_tool)
    if rollback_tool is None:
        raise TemplateError("NOT_ELIGIBLE: no rollback can be derived for this action")
    targets = {arg: request.targets[arg] for arg in template.target_args}
    marked = {**targets, "job_id": request.job_id}
    action_args: dict[str, Any] = dict(marked)
    if template.write_tool == catalog.WRITE_ROLE:
        action_args |= {
            "duration_minutes": request.minutes,
            "justification": request.justification,
            "ticket_number": request.ticket,
        }
    read_args = (
        marked
        if "job_id" in catalog.TOOLS[template.read_tool].parameters.get("properties", {})
        else targets
    )
    return {
        "action": {"tool": template.write_tool, "arguments": action_args},
        "verify_action": {
            "tool": template.read_tool,
            "arguments": {**read_args, "expect": template.expect_after_action},
        },
        "rollback": {
            "steps": [{"tool": rollback_tool, "arguments": marked}],
            "verify": {
                "tool": template.read_tool,
                "arguments": {**read_args, "expect": template.expect_after_rollback},
            },
        },
    }


def build_wpc(
    request: PlanRequest,
    issuer_did: str,
    *,
    model: ModelAllowance | None = None,
    max_minutes: int | None = None,
    revision: int = 0,
) -> dict[str, Any]:
    """The WPC payload for ``request`` (keys sorted), or TemplateError if it is not eligible.

    Does NOT check who the requester is or whether they may ask: that is the job's business.
    """
    template = TEMPLATES.get(request.template)
    if template is None:
        raise TemplateError(f"unknown template {request.template[:40]!r}")
    limit = min(max_minutes or template.max_minutes, template.max_minutes)
    _check_request(request, template, limit)
    calls = plan_calls(template, request)
    statements = [
        _allow("AllowPrivilegedAction", calls["action"]),
        _allow("AllowVerificationRead", calls["verify_action"]),
        *(_allow(f"AllowRollback{i}", s) for i, s in enumerate(calls["rollback"]["steps"], 1)),
    ]
    if model is not None:
        statements.append(
            {
                "sid": "AllowModel",
                "effect": "Allow",
                "actions": ["model:invoke"],
                "resources": ["*"],
                "conditions": {
                    "StringEquals": {"Model:Provider": model.provider, "Model:Name": model.name}
                },
            }
        )
    statements.extend(_deny_statements())
    terms = {
        "terms_version": "1",
        "template": template.name,
        "job_id": request.job_id,
        "revision": revision,
        "requester": request.requester,
        "justification": request.justification,
        "ticket": request.ticket,
        **calls,
        "timebox": {
            "requested_minutes": request.minutes,
            "max_duration_minutes": limit,
            "cst_max_ttl_minutes": request.minutes,
            "no_renew_without_reapproval": True,
        },
        "approvals": {
            "min_approvers": 2,
            "approver_must_not_equal_requester": True,
            "distinct_approvers": True,
        },
        "kill_switch": {"triggers": list(KILL_TRIGGERS), "anyone_in_incident_channel": True},
        "audit": {
            "receipts": ["human_approval_receipt", "tool_receipt", "gateway_receipt"],
            "proof_bundle": "proof_bundle.v1",
            "chain_head_witness": "incident_channel",
        },
    }
    payload = {
        "policy_version": "2",
        "policy_id": f"breakglass-{request.job_id}-r{revision}"[:128],
        "issuer_did": issuer_did,
        "statements": statements,
        "metadata": {"breakglass": terms},
    }
    result: dict[str, Any] = sorted_json(payload)
    return result


def policy_hash(payload: Mapping[str, Any]) -> str:
    """``sha256(JCS(payload))`` as base64url: the WPC's identity and the plan hash."""
    return payload_hash(payload)


def sign_wpc(payload: Mapping[str, Any], signer: Signer, now: datetime) -> dict[str, Any]:
    check_size(payload)
    Policy.from_payload(payload)
    return sign_envelope(ENVELOPE_TYPE, payload, signer, now)


def check_size(payload: Mapping[str, Any]) -> None:
    size = len(jcs(payload))
    if size > MAX_POLICY_BYTES:
        raise TooLarge(f"policy of {size} bytes is above the {MAX_POLICY_BYTES} byte limit")


def verify_wpc(envelope: object, allowed_signers: Collection[str]) -> Policy:
    """Verify a signed WPC envelope and parse it. Raises VerificationError with a reason code.

    Does NOT check that the policy fits any particular job; callers compare the hash.
    """
    verified = verify_envelope(
        envelope,
        expected_types={ENVELOPE_TYPE},
        allowed_signers=allowed_signers,
        check_payload=_check_policy_payload,
    )
    return Policy.from_verified(verified)


def _check_policy_payload(payload: Mapping[str, Any]) -> None:
    Policy.from_payload(payload)


# ---------------------------------------------------------------- evaluation


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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
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
        return cls(payload, policy_hash(payload), statements, terms, issuer)

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
        return self.evaluate("tool:execute", _resources(spec, arguments), {"Tool:Name": spec.name})

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
