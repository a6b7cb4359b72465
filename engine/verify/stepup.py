"""Where a plan requires step-up, every approval of it carries the evidence of a fresh
sign-in: the plan's authentication context, the approver's own principal, and an
``auth_time`` no older than the plan allows at the time of the approval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from engine.canonical import strict_loads
from engine.errors import InputError
from engine.stepup import CLOCK_SKEW
from engine.timeutil import from_epoch
from engine.verify.evidence import Evidence, timestamp

STEP_UP_MISSING = "BREAKGLASS_STEP_UP_MISSING"


def check_step_up(ev: Evidence) -> None:
    """Report each approval of a step-up plan whose evidence is absent or does not fit.

    Does NOT re-check the ID token (the bundle holds only its hash): the evidence is as
    trustworthy as the agent signature on the approval receipt.
    """
    by_hash = ev.by_hash
    for approval in ev.payload.get("human_approval_receipts", []):
        if approval.get("approval_type") != "explicit_approve":
            continue
        policy = by_hash.get(str(approval.get("plan_hash_b64u")))
        access = policy.terms.get("access") if policy is not None else None
        terms = access.get("step_up") if isinstance(access, Mapping) else None
        if isinstance(terms, Mapping):
            problem = _problem(approval, terms)
            if problem:
                ev.report.fail(STEP_UP_MISSING, f"{approval.get('receipt_id')}: {problem}")


def _parse(text: object) -> object:
    """The evidence: canonical JSON in a string (binding values are strings)."""
    if not isinstance(text, str):
        return None
    try:
        return strict_loads(text, max_bytes=4096)
    except InputError:
        return None


def _problem(approval: Mapping[str, Any], terms: Mapping[str, Any]) -> str:
    binding = approval.get("binding")
    evidence = _parse(binding.get("step_up")) if isinstance(binding, Mapping) else None
    if not isinstance(evidence, Mapping):
        return "no step-up evidence"
    if str(evidence.get("subject", "")).lower() != str(approval.get("approver_subject")).lower():
        return "step-up by another principal"
    acrs = evidence.get("acrs")
    if not isinstance(acrs, list) or terms.get("acr") not in acrs:
        return f"step-up without context {terms.get('acr')}"
    auth_time = evidence.get("auth_time")
    if isinstance(auth_time, bool) or not isinstance(auth_time, int):
        return "step-up without auth_time"
    at = timestamp(approval["timestamp"])
    oldest = at - timedelta(seconds=int(terms.get("max_age_seconds", 0))) - CLOCK_SKEW
    if not oldest <= from_epoch(auth_time) <= at + CLOCK_SKEW:
        return "step-up sign-in not fresh at approval"
    return ""
