"""Every successful tool call happened inside its token's window and the WPC, and the
write was read back, rolled back and read back again."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.cst import CLOCK_SKEW_SECONDS
from engine.receipts import content_hash
from engine.timeutil import from_epoch
from engine.tools import ToolRole
from engine.verify.evidence import Call, Evidence, timestamp


def check_calls(ev: Evidence) -> list[Call]:
    """The tool calls in time order; each successful one checked against policy and token."""
    allowed = {t for p in ev.policies for t in p.tools_with_role(set(ToolRole))}
    revoked = {r["payload"]["jti"]: timestamp(r["payload"]["revoked_at"]) for r in ev.revocations}
    calls = []
    for item in ev.payload.get("tool_receipts", []):
        body = item.get("payload", item)
        scope = body.get("binding", {}).get("token_scope_hash_b64u")
        call = Call(
            timestamp(body["timestamp"]),
            body["tool_name"],
            body.get("result_status", "success"),
            body["args_hash_b64u"],
            scope,
        )
        calls.append(call)
        if call.status == "success":  # refused or failed: nothing happened under it
            _check_success_call(ev, call, allowed, revoked)
    return sorted(calls, key=lambda c: c.at)


def _check_success_call(
    ev: Evidence, call: Call, allowed: set[str], revoked: Mapping[str, datetime]
) -> None:
    if call.tool not in allowed:
        ev.report.fail("BREAKGLASS_CALL_OUTSIDE_POLICY", f"{call.tool} is not in the WPC")
    candidates = ev.tokens.get(call.token_scope_hash or "")
    if not candidates:
        ev.report.fail("BREAKGLASS_CALL_WITHOUT_TOKEN", f"{call.tool} names no token")
        return
    # The call binds to a token that was live when it ran (a renewal shares the scope hash).
    live = [claims for claims in candidates if _within_lifetime(claims, call.at)]
    if not live:
        ev.report.fail(
            "BREAKGLASS_CALL_OUTSIDE_WINDOW", f"{call.tool} ran outside its token window"
        )
        return
    cuts = [revoked.get(str(claims["jti"])) for claims in live]
    if all(cut is not None and call.at > cut for cut in cuts):
        ev.report.fail("BREAKGLASS_CALL_AFTER_REVOCATION", f"{call.tool} ran after revocation")


def _within_lifetime(claims: Mapping[str, Any], at: datetime) -> bool:
    skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
    start, end = from_epoch(int(claims["iat"])), from_epoch(int(claims["exp"]))
    return start - skew <= at <= end + skew


def check_rollback(ev: Evidence, calls: list[Call]) -> bool:
    """Was the write (if any) verified, rolled back and verified again? False if not."""
    ok = [c for c in calls if c.status == "success"]
    write_tool, _ = ev.planned(("action",))
    writes = [c for c in ok if c.tool == write_tool]
    if not writes:
        return True
    if not _read_after(ok, writes[0].at, ev.planned(("verify_action",))):
        ev.report.fail("BREAKGLASS_VERIFICATION_MISSING", "no verified read after the write")
    steps = [
        (str(step["tool"]), content_hash(step["arguments"]))
        for step in ev.policy.terms["rollback"]["steps"]
    ]
    tried = [c for c in calls if (c.tool, c.args_hash) in steps and c.at >= writes[-1].at]
    done = [c for c in tried if c.status == "success"]
    if not done:
        ev.report.fail("BREAKGLASS_ROLLBACK_MISSING", _not_rolled_back(len(tried)))
        return False
    verified = _read_after(ok, done[-1].at, ev.planned(("rollback", "verify")))
    if not verified:
        ev.report.fail("BREAKGLASS_VERIFICATION_MISSING", "no verified read after the rollback")
    return verified


def _not_rolled_back(attempts: int) -> str:
    """Whether the planned rollback was never tried or tried and never succeeded."""
    if not attempts:
        return "the write was not rolled back: no rollback attempt after the write"
    plural = "" if attempts == 1 else "s"
    return (
        f"the write was not rolled back: {attempts} receipted rollback attempt{plural},"
        " none succeeded"
    )


def _read_after(calls: list[Call], at: datetime, planned: tuple[str, str]) -> bool:
    return any(c.at >= at and (c.tool, c.args_hash) == planned for c in calls)


def check_model_calls(ev: Evidence) -> list[dict[str, Any]]:
    """Every receipted model call went to a provider and model its WPC allows (the proxy
    refuses others at run time; this proves it afterwards). The calls, for the summary."""
    out = []
    by_hash = ev.by_hash
    decided: dict[tuple[str, str, str], bool] = {}  # (policy, provider, model): one answer
    for envelope in ev.payload.get("receipts", []):
        body = envelope["payload"]
        bound = body.get("binding", {}).get("policy_hash")
        policy = by_hash.get(str(bound), ev.policy)
        route = f"{body['provider']}:{body['model']}"
        key = (policy.policy_hash_b64u, str(body["provider"]), str(body["model"]))
        if key not in decided:
            decided[key] = policy.allows_model(key[1], key[2]).allowed
        allowed = decided[key]
        if not allowed:
            ev.report.fail(
                "BREAKGLASS_MODEL_OUTSIDE_POLICY",
                f"model call {body['receipt_id']} went to {route[:120]}, not allowed by its WPC",
            )
        out.append(
            {
                "at": body["timestamp"],
                "route": route,
                "receipt_hash_b64u": envelope["payload_hash_b64u"],
                "span_id": body.get("binding", {}).get("span_id"),
                "allowed": allowed,
            }
        )
    return out
