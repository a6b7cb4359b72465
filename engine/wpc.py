"""Work Policy Contracts: break-glass templates, building, signing and verification.

A WPC is a ``work_policy_contract.v2`` payload: IAM-style statements (evaluated by
``engine.policy``) over ``tool:execute`` and ``model:invoke``, plus the break-glass terms
under the hash-bound ``metadata.breakglass``. ``policy_hash_b64u = sha256(JCS(payload))``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine import catalog
from engine.access import AccessRules
from engine.canonical import jcs
from engine.containment import ContainSettings, rotation_statements, settings_for
from engine.did import Signer
from engine.envelope import (
    payload_hash,
    sign_envelope,
    sorted_json,
    verify_envelope,
)
from engine.errors import TemplateError, TooLarge
from engine.policy import Decision, Policy, Statement, resource, target_resources

__all__ = ["Decision", "Policy", "Statement", "resource"]  # evaluation lives in engine.policy

ENVELOPE_TYPE = "work_policy_contract"
MAX_POLICY_BYTES = 64 * 1024
KILL_TRIGGERS = ("approval_revoked", "timebox_expired", "unexpected_target_detected")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}\Z")


def is_plain_id(value: object) -> bool:
    """A job or target id as a WPC may carry it: 1-128 letters, digits and ``._@-``."""
    return isinstance(value, str) and _ID.match(value) is not None


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
    min_minutes: int = 1
    min_reason: str = ""  # why the minimum is what it is, shown with a refusal
    containment: tuple[str, ...] = ()  # kill steps that stop use of the grant at once
    # Run after the removal at every window end when the template's settings ask for it
    # (engine.containment); None: the template has no sessions to revoke.
    end_revocation: str | None = None


TEMPLATES: dict[str, Template] = {
    "entra-role": Template(
        name="entra-role",
        title="Activate Entra directory role",
        target_args=("tenant_id", "principal_id", "role_definition_id"),
        write_tool=catalog.WRITE_ROLE,
        read_tool=catalog.READ_ROLE,
        expect_after_action="present",
        expect_after_rollback="absent",
        # PIM refuses active assignments shorter than 5 minutes (ActiveDurationTooShort).
        min_minutes=5,
        min_reason="Entra PIM refuses active role assignments shorter than 5 minutes",
        # A removal may be refused in the first minutes after activation: revoking the
        # principal's sessions contains the grant until the removal can run.
        containment=(catalog.REVOKE_SESSIONS,),
        end_revocation=catalog.REVOKE_SESSIONS,
    ),
    "ca-exclusion": Template(
        name="ca-exclusion",
        title="Exclude group from Conditional Access policy",
        target_args=("tenant_id", "policy_id", "group_id"),
        write_tool=catalog.EXCLUDE_GROUP,
        read_tool=catalog.READ_CA,
        expect_after_action="excluded",
        expect_after_rollback="restored",
        # Sessions obtained while excluded (e.g. without MFA) must not outlive the exclusion.
        end_revocation=catalog.REVOKE_GROUP_SESSIONS,
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
    # Target limits admitted, prerequisite checked, step-up required (engine.lifecycle.gatekeeping)
    access: Mapping[str, Any] | None = None
    # ContainSettings.terms() from configuration; None: the template's defaults
    contain: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModelAllowance:
    provider: str
    name: str


def _check_request(request: PlanRequest, template: Template, max_minutes: int) -> None:
    for arg in template.target_args:
        value = request.targets.get(arg)
        if not is_plain_id(value):
            raise TemplateError(f"target {arg} is missing or not a plain id")
    extra = set(request.targets) - set(template.target_args)
    if extra:
        raise TemplateError(f"unexpected targets: {', '.join(sorted(extra))}")
    if isinstance(request.minutes, bool) or not isinstance(request.minutes, int):
        raise TemplateError("duration must be a whole number of minutes")
    if request.minutes > max_minutes:  # an extension's: what is left plus what is asked
        raise TemplateError(
            f"a window of {request.minutes} minutes is above the {max_minutes}-minute maximum"
        )
    if request.minutes < template.min_minutes:
        why = f" ({template.min_reason})" if template.min_reason else ""
        raise TemplateError(
            f"duration must be between {template.min_minutes} and {max_minutes} minutes{why}"
        )
    for name, limit in (("justification", 500), ("ticket", 100), ("requester", 128)):
        text = getattr(request, name)
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise TemplateError(f"{name} is required and at most {limit} characters")
    if not is_plain_id(request.job_id):
        raise TemplateError("job id is not a plain id")


def _allow(sid: str, call: Mapping[str, Any]) -> dict[str, Any]:
    spec = catalog.TOOLS[call["tool"]]
    return {
        "sid": sid,
        "effect": "Allow",
        "actions": ["tool:execute"],
        "resources": target_resources(spec, call["arguments"]),
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


def contain_terms(rules: AccessRules | None, template_name: str) -> dict[str, Any] | None:
    """The containment configured for a template (``[templates.<name>]``), as WPC terms;
    None for an unknown template (the plan builder refuses it with its own reason)."""
    template = TEMPLATES.get(template_name)
    if template is None:
        return None
    revocable = template.end_revocation is not None
    return settings_for(rules, template_name, revocable).terms()


def contain_settings(template: Template, request: PlanRequest) -> ContainSettings:
    """The request's containment: as configured, or the template's defaults."""
    if request.contain is None:
        return ContainSettings(revoke_sessions_at_end=template.end_revocation is not None)
    settings = ContainSettings.from_terms(request.contain)
    if settings.revoke_sessions_at_end and template.end_revocation is None:
        raise TemplateError(f"template {template.name} names no principal to revoke at the end")
    return settings


def plan_calls(
    template: Template, request: PlanRequest, contain: ContainSettings | None = None
) -> dict[str, Any]:
    """The action, its verification read, the rollback steps and the rollback verification,
    and the containment steps every window end runs after the removal (``at_end``)."""
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
    rollback: dict[str, Any] = {
        "steps": [{"tool": rollback_tool, "arguments": marked}],
        "verify": {
            "tool": template.read_tool,
            "arguments": {**read_args, "expect": template.expect_after_rollback},
        },
    }
    if template.containment:
        rollback["containment"] = [_containment(tool, targets) for tool in template.containment]
    if contain is not None and contain.revoke_sessions_at_end and template.end_revocation:
        rollback["at_end"] = [_containment(template.end_revocation, targets)]
    calls: dict[str, Any] = {
        "action": {"tool": template.write_tool, "arguments": action_args},
        "verify_action": {
            "tool": template.read_tool,
            "arguments": {**read_args, "expect": template.expect_after_action},
        },
        "rollback": rollback,
    }
    # After the window, the activity read (issue 17 §5): the planned call without its span.
    activity_tool = catalog.ACTIVITY_OF.get(template.write_tool)
    if activity_tool is not None:
        own = _containment(activity_tool, targets)["arguments"]  # the tool's own targets
        calls["activity"] = {"tool": activity_tool, "arguments": {**own, "job_id": request.job_id}}
    return calls


def _new_at_end(rollback: Mapping[str, Any]) -> list[Any]:
    """End steps no containment statement already allows (one Allow per call suffices)."""
    contained = rollback.get("containment", [])
    return [step for step in rollback.get("at_end", []) if step not in contained]


def _containment(tool: str, targets: Mapping[str, str]) -> dict[str, Any]:
    """A kill step on the job's own targets: exactly the arguments the tool names as targets."""
    spec = catalog.TOOLS[tool]
    return {"tool": tool, "arguments": {arg: targets[arg] for arg in spec.targets}}


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
    contain = contain_settings(template, request)
    calls = plan_calls(template, request, contain)
    statements = [
        _allow("AllowPrivilegedAction", calls["action"]),
        _allow("AllowVerificationRead", calls["verify_action"]),
        *(_allow(f"AllowRollback{i}", s) for i, s in enumerate(calls["rollback"]["steps"], 1)),
        *(
            _allow(f"AllowContainment{i}", s)
            for i, s in enumerate(calls["rollback"].get("containment", []), 1)
        ),
        *(_allow(f"AllowAtEnd{i}", s) for i, s in enumerate(_new_at_end(calls["rollback"]), 1)),
        *rotation_statements(contain, request.targets["tenant_id"]),
        *([_allow("AllowActivityRead", calls["activity"])] if "activity" in calls else []),
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
        "contain": contain.terms(),
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
    if request.access is not None:
        terms["access"] = dict(request.access)
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
