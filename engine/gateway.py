"""The tool gateway's decision: may this call, with this token, run now? (DESIGN §5)

Pure: everything it needs is passed in. It allows (returning what it checked) or raises
GatewayRefusal with a stable reason; a target outside the WPC also names the kill trigger
``unexpected_target_detected``. Transport, execution and receipts live elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine import catalog
from engine.canonical import strict_loads
from engine.containment import AGENT_CALL_LIMIT, CREDENTIAL_WRITES, MAX_DERIVED_CREDENTIALS
from engine.cst import TokenKind, VerifiedToken, tool_scope, verify_token
from engine.encoding import b64u_decode
from engine.errors import GatewayRefusal, InputError, InvalidToken
from engine.lifecycle import ToolCallRecorded
from engine.timeutil import epoch
from engine.tools import ToolResult, ToolSpec
from engine.wpc import Policy

UNEXPECTED_TARGET = "unexpected_target_detected"
MAX_ARGUMENT_CHARS = 2000


@dataclass(frozen=True)
class ToolCall:
    tool_name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class GatewayView:
    """What the gateway knows about the running job, as plain data."""

    job_id: str
    policy: Policy  # the pinned WPC, whose envelope was verified when it was loaded
    trusted_issuers: Collection[str]
    is_revoked: Callable[[str], bool]
    tools: Mapping[str, ToolSpec] = field(default_factory=lambda: catalog.TOOLS)
    # Credentials the job has created, or been allowed to create and not yet receipted.
    credentials_added: int = 0
    tool_receipts: int = 0  # the job's tool receipts so far


@dataclass(frozen=True)
class Allowed:
    token: VerifiedToken
    spec: ToolSpec
    statement: str


def decide(call: ToolCall, token: object, view: GatewayView, now: datetime) -> Allowed:
    """Allow ``call`` or raise GatewayRefusal. Checks, in order:

    (1)-(6) the token: signature and issuer key, iat/exp with skew, revocation by jti,
    mission_id = the job, policy pin = the loaded WPC, scope hash; (7) explicit Deny in the
    WPC for this tool name; (8) the tool is known and in the token's scope; (9) arguments are
    well-formed for the tool; (10) the WPC allows the tool on exactly these targets;
    (11) the job marker names this job; (12) window-bound arguments fit the token's lifetime;
    (13) a credential write stays within the job's limit (its derived rollback records must
    fit the bundle). Does NOT execute anything or check the outside world's state.
    """
    verified = _check_token(token, view, now)
    if verified.kind == TokenKind.AGENT and view.tool_receipts >= AGENT_CALL_LIMIT:
        raise GatewayRefusal("CALL_LIMIT", f"at most {AGENT_CALL_LIMIT} agent calls per job")
    name = call.tool_name if isinstance(call.tool_name, str) else ""
    denied = view.policy.evaluate("tool:execute", ["*"], {"Tool:Name": name})
    if denied.reason == "EXPLICIT_DENY":
        raise GatewayRefusal("TOOL_DENIED", f"{name[:80]} is denied by {denied.detail}")
    spec = view.tools.get(name)
    if spec is None:
        raise GatewayRefusal("TOOL_UNKNOWN", name[:80])
    if tool_scope(spec.name) not in verified.scope:
        raise GatewayRefusal("TOKEN_INSUFFICIENT_SCOPE", f"token may not call {spec.name}")
    _check_arguments(spec, call.arguments)
    decision = view.policy.tool_call_decision(spec, call.arguments)
    if decision.reason == "TARGET_OUT_OF_SCOPE":
        raise GatewayRefusal("TARGET_OUT_OF_SCOPE", decision.detail, UNEXPECTED_TARGET)
    if not decision.allowed:
        raise GatewayRefusal("TOOL_NOT_ALLOWED", f"{spec.name}: {decision.reason}")
    if "job_id" in call.arguments and call.arguments["job_id"] != view.job_id:
        raise GatewayRefusal(
            "TARGET_OUT_OF_SCOPE", "job marker names another job", UNEXPECTED_TARGET
        )
    _check_window_bound(spec, call.arguments, verified, now)
    if spec.name in CREDENTIAL_WRITES and view.credentials_added >= MAX_DERIVED_CREDENTIALS:
        # Like a tool the WPC does not allow: refused and receipted, the job goes on.
        detail = f"at most {MAX_DERIVED_CREDENTIALS} credentials per job"
        raise GatewayRefusal("CREDENTIAL_LIMIT", detail)
    return Allowed(verified, spec, decision.detail)


def _check_token(token: object, view: GatewayView, now: datetime) -> VerifiedToken:
    try:
        return verify_token(
            token,
            trusted_issuers=view.trusted_issuers,
            now=now,
            job_id=view.job_id,
            policy_hash_b64u=view.policy.policy_hash_b64u,
            is_revoked=view.is_revoked,
        )
    except InvalidToken as exc:
        raise GatewayRefusal(exc.reason, exc.detail) from exc


def _check_arguments(spec: ToolSpec, arguments: object) -> None:
    """Arguments are a flat object of the tool's declared parameters, with sane values."""
    if not isinstance(arguments, Mapping):
        raise GatewayRefusal("ARGUMENTS_INVALID", "arguments are not an object")
    declared = spec.parameters.get("properties", {})
    unknown = [k for k in arguments if k not in declared]
    missing = [k for k in spec.parameters.get("required", []) if k not in arguments]
    if unknown or missing:
        detail = f"unknown {sorted(map(str, unknown))[:5]} missing {missing[:5]}"
        raise GatewayRefusal("ARGUMENTS_INVALID", detail)
    for key, value in arguments.items():
        expected = declared[key].get("type")
        ok = (
            (expected == "integer" and isinstance(value, int) and not isinstance(value, bool))
            or (expected == "string" and isinstance(value, str))
            or (expected is None and isinstance(value, str))
        )
        if not ok or (isinstance(value, str) and len(value) > MAX_ARGUMENT_CHARS):
            raise GatewayRefusal("ARGUMENTS_INVALID", f"{key} has the wrong type or size")
        allowed_values = declared[key].get("enum")
        if allowed_values is not None and value not in allowed_values:
            raise GatewayRefusal("ARGUMENTS_INVALID", f"{key} is not one of {allowed_values}")


def _check_window_bound(
    spec: ToolSpec, arguments: Mapping[str, Any], token: VerifiedToken, now: datetime
) -> None:
    if spec.window_bound is None:
        return
    minutes_left = -(-(token.expires_at_epoch - epoch(now)) // 60)  # rounded up
    if arguments[spec.window_bound] > minutes_left:
        raise GatewayRefusal(
            "ARGUMENT_BEYOND_WINDOW", f"{spec.window_bound} exceeds the {minutes_left} min left"
        )


def token_scope_hash_of(token: object) -> str | None:
    """The scope hash a presented token claims, for binding a refusal receipt (unverified)."""
    try:
        claims = strict_loads(b64u_decode(str(token).split(".")[1]))
    except (InputError, IndexError):
        return None
    value = claims.get("token_scope_hash_b64u") if isinstance(claims, dict) else None
    return value if isinstance(value, str) else None


def recorded_call(
    call: ToolCall,
    *,
    receipt_id: str,
    latency_ms: int,
    allowed: Allowed | None = None,
    result: ToolResult | None = None,
    refusal: GatewayRefusal | None = None,
    token: object = None,
    started_at: datetime | None = None,
) -> ToolCallRecorded:
    """The command that receipts one gateway outcome: an allowed call and what it returned
    (``started_at``: when it was allowed), or a refusal (whose receipt hashes the reason and
    binds the token it presented)."""
    if allowed is not None and result is not None:
        verified = result.body.get("verified")
        ok = result.ok and verified is not False
        return ToolCallRecorded(
            receipt_id=receipt_id,
            tool_name=allowed.spec.name,
            arguments=dict(call.arguments),
            result=dict(result.body),
            # For a verification read, success means "the tenant looks as planned".
            status="success" if ok else "error",
            token_scope_hash=allowed.token.token_scope_hash_b64u,
            latency_ms=latency_ms,
            role=allowed.spec.role.value,
            verified=verified if isinstance(verified, bool) else None,
            started_at=started_at,
        )
    reason = refusal.reason if refusal is not None else "NOT_EXECUTED"
    arguments = call.arguments if isinstance(call.arguments, Mapping) else {}
    return ToolCallRecorded(
        receipt_id=receipt_id,
        tool_name=call.tool_name if isinstance(call.tool_name, str) else "",
        arguments=_jsonable(arguments),
        result={"refused": reason},
        status="error",
        token_scope_hash=token_scope_hash_of(token),
        latency_ms=latency_ms,
        role="refused",
        kill_trigger=refusal.kill_trigger if refusal is not None else None,
    )


def _jsonable(arguments: Mapping[Any, Any]) -> dict[str, Any]:
    """Arguments as hashable JSON: non-string keys and odd values are stringified."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        ok = isinstance(value, str | bool | None) or (isinstance(value, int) and abs(value) < 2**53)
        out[str(key)] = value if ok else repr(value)[:200]
    return out
