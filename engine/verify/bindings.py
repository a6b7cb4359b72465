""" "Was this CST bound to this job and this WPC hash?", answered from a proof bundle.

A token is proven bound when the bundle verifies, its claims name the bundle's job
(``mission_id``) and a WPC the bundle carries (``policy_hash_b64u``), its scope hash is its
own, and a chain event witnesses its issue (``token_issued`` over the claims' hash).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import chain
from engine.compact import expand
from engine.cst import token_scope_hash
from engine.errors import BreakGlassError
from engine.receipts import content_hash
from engine.timeutil import from_epoch, iso_ms
from engine.verify.trust import Report, Trust
from engine.wpc import verify_wpc


def token_bindings(bundle: Mapping[str, Any], report: Report, trust: Trust) -> list[dict[str, Any]]:
    """One row per token in a verified bundle (``report`` is its verification); none when
    the bundle is too malformed to read (then nothing is proven)."""
    try:
        return _bindings(bundle, report, trust)
    except (BreakGlassError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        return []


def _bindings(bundle: Mapping[str, Any], report: Report, trust: Trust) -> list[dict[str, Any]]:
    payload = bundle.get("payload", {})
    meta = payload.get("metadata", {}).get("breakglass", {})
    policies = [
        verify_wpc(e, trust.registry_publisher_dids)
        for e in expand(meta.get("policies"), "policies")
    ]
    tokens = expand(meta.get("tokens", []), "tokens")
    revocations = expand(meta.get("revocations", []), "revocations")
    wpcs = {p.policy_hash_b64u: p for p in policies}
    events = payload.get("event_chain", [])
    run_id = events[0]["run_id"] if events else None
    issued = {e["payload_hash_b64u"]: e for e in events if e["event_type"] == chain.TOKEN_ISSUED}
    revoked = {r["payload"].get("jti"): r["payload"].get("revoked_at") for r in revocations}
    rows = []
    for claims in tokens:
        event = issued.get(content_hash(claims))
        policy = wpcs.get(str(claims.get("policy_hash_b64u")))
        checks = {
            "bundle_valid": report.valid,
            "job_matches": claims.get("mission_id") == run_id,
            "wpc_in_bundle": policy is not None,
            "scope_hash_matches": token_scope_hash(claims) == claims.get("token_scope_hash_b64u"),
            "issue_witnessed": event is not None,
        }
        rows.append(_row(claims, policy, event, revoked.get(claims.get("jti")), run_id, checks))
    return rows


def _row(
    claims: Mapping[str, Any],
    policy: Any,
    event: Mapping[str, Any] | None,
    revoked_at: object,
    run_id: object,
    checks: dict[str, bool],
) -> dict[str, Any]:
    sub = str(claims.get("sub", ""))
    return {
        "jti": claims.get("jti"),
        "kind": sub.split(":")[1] if ":" in sub else sub,
        "job_id": claims.get("mission_id"),
        "bundle_job_id": run_id,
        "wpc_hash_b64u": claims.get("policy_hash_b64u"),
        "policy_id": policy.payload.get("policy_id") if policy is not None else None,
        "token_scope_hash_b64u": claims.get("token_scope_hash_b64u"),
        "issued_at": iso_ms(from_epoch(int(claims["iat"]))),
        "expires_at": iso_ms(from_epoch(int(claims["exp"]))),
        "revoked_at": revoked_at,
        "issue_event_hash_b64u": event["event_hash_b64u"] if event else None,
        "checks": checks,
        "proven": all(checks.values()),
    }
