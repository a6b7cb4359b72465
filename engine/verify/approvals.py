"""Each agent token was preceded by enough distinct, non-requester approvals of the very
plan it is pinned to; a withdrawal or denial before issue cancels an approval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.timeutil import from_epoch
from engine.verify.evidence import Evidence, timestamp, to_second


def check_approvals(ev: Evidence) -> None:
    approvals = sorted(
        ev.payload.get("human_approval_receipts", []), key=lambda a: timestamp(a["timestamp"])
    )
    for claims in ev.token_claims:
        if str(claims.get("sub", "")).startswith("breakglass:agent"):
            _check_token_approvals(ev, claims, approvals)


def _approvers_before_issue(approvals: Sequence[Mapping[str, Any]], issued: datetime) -> set[str]:
    """Who stood as approving (their latest answer before the token) when it was issued."""
    latest: dict[str, str] = {}
    for approval in approvals:
        if to_second(approval["timestamp"]) <= issued:
            latest[str(approval.get("approver_subject"))] = approval["approval_type"]
    return {who for who, kind in latest.items() if kind == "explicit_approve"}


def _check_token_approvals(
    ev: Evidence, claims: Mapping[str, Any], approvals: Sequence[Mapping[str, Any]]
) -> None:
    plan_hash = claims["policy_hash_b64u"]
    policy = ev.by_hash.get(plan_hash, ev.policy)
    issued = from_epoch(int(claims["iat"]))
    on_plan = [a for a in approvals if a.get("plan_hash_b64u") == plan_hash]
    approvers = _approvers_before_issue(on_plan, issued)
    requester = policy.terms.get("requester")
    if requester in approvers:
        ev.report.fail("BREAKGLASS_SELF_APPROVAL", "the requester approved their own request")
    needed = int(policy.terms.get("approvals", {}).get("min_approvers", 2))
    if len(approvers - {requester}) >= needed:
        return
    late = any(to_second(a["timestamp"]) > issued for a in on_plan)
    code = "BREAKGLASS_APPROVAL_AFTER_ISSUE" if late else "BREAKGLASS_APPROVALS_INSUFFICIENT"
    ev.report.fail(
        code, f"{len(approvers)} approver(s) before token {claims['jti']}, {needed} needed"
    )
