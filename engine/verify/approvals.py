"""Each agent token was preceded by enough distinct, non-requester approvals of the very
plan it is pinned to; a withdrawal or denial before issue cancels an approval.

"Before" is by time and by the signed chain: a token's ``iat`` counts whole seconds, so an
answer given in the same second as the issue (a withdrawal right after it) cannot be placed
by time alone; the chain places it. An approval or token the chain does not hold (a bundle
failing elsewhere for that) is placed by its time only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine import chain
from engine.receipts import content_hash, witness_hash
from engine.timeutil import from_epoch
from engine.verify.evidence import Evidence, timestamp, to_second


def check_approvals(ev: Evidence) -> None:
    approvals = sorted(
        ev.payload.get("human_approval_receipts", []), key=lambda a: timestamp(a["timestamp"])
    )
    order = _Order(ev)
    for claims in ev.token_claims:
        if str(claims.get("sub", "")).startswith("breakglass:agent"):
            _check_token_approvals(ev, claims, approvals, order)


class _Order:
    """Where approvals and tokens stand in the chain (None: not in it)."""

    def __init__(self, ev: Evidence) -> None:
        self.at = {(e["event_type"], e["payload_hash_b64u"]): i for i, e in enumerate(ev.events)}

    def approval(self, approval: Mapping[str, Any]) -> int | None:
        return self.at.get((chain.APPROVAL, witness_hash(approval)))

    def token(self, claims: Mapping[str, Any]) -> int | None:
        return self.at.get((chain.TOKEN_ISSUED, content_hash(claims)))


def _before(
    approval: Mapping[str, Any], token_at: int | None, issued: datetime, order: _Order
) -> bool:
    """Was ``approval`` given before the token? Its time (whole seconds) must say so, and
    where the chain holds both, its place in the chain too."""
    by_time = to_second(approval["timestamp"]) <= issued
    approval_at = order.approval(approval)
    if approval_at is None or token_at is None:
        return by_time
    return by_time and approval_at < token_at


def _approvers_before_issue(
    approvals: Sequence[Mapping[str, Any]], before: Callable[[Mapping[str, Any]], bool]
) -> set[str]:
    """Who stood as approving (their latest answer before the token) when it was issued."""
    latest: dict[str, str] = {}
    for approval in approvals:
        if before(approval):
            latest[str(approval.get("approver_subject"))] = approval["approval_type"]
    return {who for who, kind in latest.items() if kind == "explicit_approve"}


def _check_token_approvals(
    ev: Evidence,
    claims: Mapping[str, Any],
    approvals: Sequence[Mapping[str, Any]],
    order: _Order,
) -> None:
    plan_hash = claims["policy_hash_b64u"]
    policy = ev.by_hash.get(plan_hash, ev.policy)
    issued = from_epoch(int(claims["iat"]))
    token_at = order.token(claims)

    def before(approval: Mapping[str, Any]) -> bool:
        return _before(approval, token_at, issued, order)

    on_plan = [a for a in approvals if a.get("plan_hash_b64u") == plan_hash]
    approvers = _approvers_before_issue(on_plan, before)
    requester = policy.terms.get("requester")
    if requester in approvers:
        ev.report.fail("BREAKGLASS_SELF_APPROVAL", "the requester approved their own request")
    needed = int(policy.terms.get("approvals", {}).get("min_approvers", 2))
    if len(approvers - {requester}) >= needed:
        return
    late = any(not before(a) for a in on_plan)
    code = "BREAKGLASS_APPROVAL_AFTER_ISSUE" if late else "BREAKGLASS_APPROVALS_INSUFFICIENT"
    ev.report.fail(
        code, f"{len(approvers)} approver(s) before token {claims['jti']}, {needed} needed"
    )
