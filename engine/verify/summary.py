"""The facts a verification report shows beside its verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.cst import TokenKind
from engine.timeutil import from_epoch
from engine.verify.evidence import Call, Evidence


def summarise(
    ev: Evidence, calls: list[Call], models: list[dict[str, Any]], rollback_verified: bool
) -> dict[str, Any]:
    run = ev.meta.get("run", {})
    return {
        "policy_id": ev.policy.payload.get("policy_id"),
        "policy_hash_b64u": ev.policy.policy_hash_b64u,
        "job_id": ev.run_id,
        "requester": ev.policy.terms.get("requester"),
        "approvals": [
            {
                "approver": a.get("approver_subject"),
                "type": a["approval_type"],
                "at": a["timestamp"],
            }
            for a in ev.payload.get("human_approval_receipts", [])
        ],
        "tokens": [_token(c) for c in ev.token_claims],
        "timeline": [{"at": c.at.isoformat(), "tool": c.tool, "status": c.status} for c in calls],
        "model_calls": len(ev.payload.get("receipts", [])),
        "model_timeline": models,
        "outcome": run.get("outcome"),
        "rollback_verified": rollback_verified,
        "kill": run.get("ended_by"),
    }


def _token(claims: Mapping[str, Any]) -> dict[str, Any]:
    sub = str(claims.get("sub", ""))
    return {
        "jti": claims["jti"],
        "kind": sub.split(":")[1] if ":" in sub else TokenKind.AGENT,
        "from": from_epoch(int(claims["iat"])).isoformat(),
        "until": from_epoch(int(claims["exp"])).isoformat(),
    }
