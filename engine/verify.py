"""Offline verification of a proof bundle: clawsig core checks, then break-glass semantics.

Core (the reference verifier's verdicts): envelope, shape, hash, signature, agent, chain,
receipt signatures and bindings. Break-glass profile, on top: the policy is the published
WPC, every event has its artifact and every artifact its event, two distinct approvers who
are not the requester approved the exact plan before the token was issued, every successful
tool call happened inside its token's window and the WPC, every token was revoked, the
rollback and both verification reads were receipted, and the chain ends in a signed terminal
record that counts every event (so cutting events off the end is detected).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine import chain
from engine.bundle import BUNDLE_TYPE, REVOCATION_TYPE, RUN_END_TYPE
from engine.bundle_schema import check_bundle_payload
from engine.cst import CLOCK_SKEW_SECONDS, TokenKind, token_scope_hash
from engine.envelope import verify_envelope
from engine.errors import InputError, VerificationError
from engine.receipts import (
    GATEWAY_RECEIPT,
    TOOL_RECEIPT,
    content_hash,
    witness_hash,
    witness_hash_fast,
)
from engine.timeutil import from_epoch, parse_iso
from engine.tools import ToolRole
from engine.wpc import verify_wpc

PROFILE_CORE = "core"
PROFILE_BREAKGLASS = "breakglass"


@dataclass(frozen=True)
class Trust:
    """Who may sign what. Built from our trust file or the reference allowlist shapes."""

    agent_dids: frozenset[str]
    gateway_receipt_signer_dids: frozenset[str]
    token_issuer_dids: frozenset[str] = frozenset()
    registry_publisher_dids: frozenset[str] = frozenset()
    declares_breakglass: bool = False

    @classmethod
    def from_json(cls, doc: object) -> Trust:
        """Accept ``{"trust_version": "1", ...}`` (ours), the reference ``allowlists.v1``
        (``gateway_receipt_signer_dids`` + ``agent_did``) or a clawverify config."""
        if not isinstance(doc, Mapping):
            raise InputError("trust file is not a JSON object")
        if isinstance(doc.get("allowlists"), Mapping):
            doc = {**doc["allowlists"], **{k: v for k, v in doc.items() if k != "allowlists"}}
        agents = _dids(doc, "agent_dids") | ({doc["agent_did"]} if "agent_did" in doc else set())
        trust = cls(
            agent_dids=frozenset(agents),
            gateway_receipt_signer_dids=_dids(doc, "gateway_receipt_signer_dids"),
            token_issuer_dids=_dids(doc, "token_issuer_dids"),
            registry_publisher_dids=_dids(doc, "registry_publisher_dids"),
            declares_breakglass=doc.get("trust_version") == "1",
        )
        if not trust.agent_dids:
            raise InputError("trust file names no agent DID: nothing could verify")
        return trust


def _dids(doc: Mapping[str, Any], key: str) -> frozenset[str]:
    values = doc.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"trust file field {key} must be a list of DIDs")
    return frozenset(values)


@dataclass
class Report:
    valid: bool
    profile: str
    reason_codes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def fail(self, code: str, message: str) -> None:
        self.valid = False
        if code not in self.reason_codes:
            self.reason_codes.append(code)
        self.reasons.append(f"{code}: {message}")

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason_codes": self.reason_codes or ["OK"],
            "reasons": self.reasons,
            "profile": self.profile,
            **self.summary,
        }


def verify_bundle(envelope: object, trust: Trust, *, profile: str | None = None) -> Report:
    """Verify a proof bundle envelope. Never raises for bad bundles: the report says why.

    ``profile`` defaults to break-glass when ``trust`` is our own trust file, else core.
    """
    chosen = profile or (PROFILE_BREAKGLASS if trust.declares_breakglass else PROFILE_CORE)
    report = Report(valid=True, profile=chosen)
    try:
        payload = _verify_core(envelope, trust)
    except VerificationError as err:
        report.fail(err.code, err.message)
        return report
    if chosen == PROFILE_BREAKGLASS:
        try:
            _BreakGlassCheck(payload, trust, report).run()
        except VerificationError as err:
            report.fail(err.code, err.message)
    return report


# ------------------------------------------------------------------------------ core


def _verify_core(envelope: object, trust: Trust) -> Mapping[str, Any]:
    verified = verify_envelope(
        envelope,
        expected_types={BUNDLE_TYPE},
        allowed_signers=trust.agent_dids,
        check_payload=check_bundle_payload,
    )
    payload = verified.payload
    if verified.signer_did != payload["agent_did"]:
        raise VerificationError("PROOF_BUNDLE_AGENT_MISMATCH", "signer is not the bundle agent")
    events = payload.get("event_chain", [])
    run_id = chain.check_chain(events) if events else None
    known = {e["event_hash_b64u"] for e in events}
    for receipt in payload.get("receipts", []):
        verify_envelope(
            receipt,
            expected_types={GATEWAY_RECEIPT},
            allowed_signers=trust.gateway_receipt_signer_dids,
        )
        _check_binding(receipt["payload"], run_id, known)
    for item in payload.get("tool_receipts", []):
        body = _tool_payload(item, trust)
        if body["agent_did"] != payload["agent_did"]:
            raise VerificationError("PROOF_BUNDLE_AGENT_MISMATCH", "tool receipt agent_did")
        _check_binding(body, run_id, known)
    for item in payload.get("human_approval_receipts", []):
        if item["agent_did"] != payload["agent_did"]:
            raise VerificationError("HUMAN_APPROVAL_AGENT_MISMATCH", "approval agent_did")
        _check_binding(item, run_id, known)
    for item in payload.get("side_effect_receipts", []):
        if item["agent_did"] != payload["agent_did"]:
            raise VerificationError("SIDE_EFFECT_AGENT_MISMATCH", "side effect agent_did")
    return payload


def _tool_payload(item: Mapping[str, Any], trust: Trust) -> Mapping[str, Any]:
    if "envelope_type" not in item:
        return item
    return verify_envelope(
        item, expected_types={TOOL_RECEIPT}, allowed_signers=trust.gateway_receipt_signer_dids
    ).payload


def _check_binding(body: Mapping[str, Any], run_id: str | None, known: set[str]) -> None:
    binding = body.get("binding")
    if binding is None:
        return
    if not isinstance(binding, Mapping):
        raise VerificationError("RECEIPT_BINDING_MISMATCH", "binding is not an object")
    if "run_id" in binding and binding["run_id"] != run_id:
        raise VerificationError("RECEIPT_BINDING_MISMATCH", "receipt bound to another run")
    if "event_hash_b64u" in binding and binding["event_hash_b64u"] not in known:
        raise VerificationError("RECEIPT_BINDING_MISMATCH", "receipt bound to no chain event")


# ------------------------------------------------------------------------ break-glass


def _ts(text: object) -> datetime:
    try:
        return parse_iso(text)
    except InputError as exc:
        raise VerificationError("SCHEMA_VALIDATION_FAILED", "bad timestamp") from exc


def _second(text: object) -> datetime:
    """A timestamp at token granularity: ``iat`` counts whole seconds."""
    return _ts(text).replace(microsecond=0)


@dataclass
class _Call:
    at: datetime
    tool: str
    status: str
    args_hash: str
    token_scope_hash: str | None


class _BreakGlassCheck:
    """The break-glass rules, each adding findings to the report."""

    def __init__(self, payload: Mapping[str, Any], trust: Trust, report: Report) -> None:
        self.payload = payload
        self.trust = trust
        self.report = report
        meta = payload.get("metadata", {}).get("breakglass")
        if not isinstance(meta, Mapping):
            raise VerificationError("SCHEMA_VALIDATION_FAILED", "metadata.breakglass missing")
        self.meta = meta
        self.events: Sequence[Mapping[str, Any]] = payload.get("event_chain", [])

    def run(self) -> None:
        envelopes = self.meta.get("policies")
        if not isinstance(envelopes, list) or not envelopes:
            raise VerificationError("SCHEMA_VALIDATION_FAILED", "metadata.breakglass.policies")
        self.policies = [verify_wpc(e, self.trust.registry_publisher_dids) for e in envelopes]
        self.policy = self.policies[0]
        self.by_hash = {p.policy_hash_b64u: p for p in self.policies}
        self.run_id = chain.check_chain(self.events)
        self._check_request()
        self.tokens = self._check_tokens()
        self._check_artifacts()
        self._check_terminal()
        self._check_approvals()
        calls = self._check_calls()
        self._check_revocations()
        self._check_rollback(calls)
        self._summarise(calls)

    def _check_request(self) -> None:
        first = self.events[0]
        if any(p.job_id != self.run_id for p in self.policies):
            self.report.fail("BREAKGLASS_POLICY_MISMATCH", "a WPC belongs to another job")
        if first["event_type"] != chain.REQUEST or (
            first["payload_hash_b64u"] != self.policy.policy_hash_b64u
        ):
            self.report.fail("BREAKGLASS_POLICY_MISMATCH", "the chain does not start at this WPC")

    def _check_tokens(self) -> dict[str, Mapping[str, Any]]:
        """Token claims by scope hash; each pinned to this WPC and job and self-consistent."""
        tokens: dict[str, Mapping[str, Any]] = {}
        for claims in self.meta.get("tokens", []):
            if not isinstance(claims, Mapping) or "token_scope_hash_b64u" not in claims:
                raise VerificationError("SCHEMA_VALIDATION_FAILED", "token claims")
            if claims.get("policy_hash_b64u") not in self.by_hash:
                self.report.fail("BREAKGLASS_POLICY_MISMATCH", "a token is pinned to another WPC")
            if claims.get("mission_id") != self.run_id:
                self.report.fail("BREAKGLASS_POLICY_MISMATCH", "a token is for another job")
            if token_scope_hash(claims) != claims["token_scope_hash_b64u"]:
                self.report.fail("TOKEN_SCOPE_HASH_MISMATCH", "token scope hash")
            tokens[claims["token_scope_hash_b64u"]] = claims
        return tokens

    def _artifact_hashes(self) -> list[tuple[str, str, str | None]]:
        """(event type, witness hash, bound event hash) of every artifact in the bundle."""
        out: list[tuple[str, str, str | None]] = []
        receipts = [
            *((chain.LLM_CALL, env["payload"]) for env in self.payload.get("receipts", [])),
            *(
                (chain.TOOL_CALL, i.get("payload", i))
                for i in self.payload.get("tool_receipts", [])
            ),
            *((chain.APPROVAL, b) for b in self.payload.get("human_approval_receipts", [])),
        ]
        for kind, body in receipts:
            bound = body.get("binding", {}).get("event_hash_b64u")
            out.append((kind, self._witness(kind, body), bound))
        for claims in self.meta.get("tokens", []):
            out.append((chain.TOKEN_ISSUED, content_hash(claims), None))
        for record in self.meta.get("revocations", []):
            out.append((chain.REVOCATION, str(record.get("payload_hash_b64u")), None))
        for policy in self.policies[1:]:
            out.append((chain.EXTENSION_REQUEST, policy.policy_hash_b64u, None))
        terminal = self.meta.get("terminal")
        if isinstance(terminal, Mapping):
            out.append((chain.RUN_END, str(terminal.get("payload_hash_b64u")), None))
        return out

    def _witness(self, kind: str, body: Mapping[str, Any]) -> str:
        fast = witness_hash_fast(body)
        return fast if (kind, fast) in self.event_keys else witness_hash(body)

    def _check_artifacts(self) -> None:
        """Every event (but the request) has exactly its artifact, and every artifact an event."""
        events = {(e["event_type"], e["payload_hash_b64u"]): e for e in self.events[1:]}
        self.event_keys = set(events)
        seen: set[tuple[str, str]] = set()
        for kind, digest, bound_to in self._artifact_hashes():
            event = events.get((kind, digest))
            if event is None or (kind, digest) in seen:
                self.report.fail("RECEIPT_BINDING_MISMATCH", f"a {kind} artifact has no event")
                continue
            if bound_to is not None and bound_to != event["event_hash_b64u"]:
                self.report.fail("RECEIPT_BINDING_MISMATCH", f"a {kind} receipt is bound elsewhere")
            seen.add((kind, digest))
        for key in events.keys() - seen:
            self.report.fail("BREAKGLASS_RECEIPT_MISSING", f"a {key[0]} event has no receipt")

    def _check_terminal(self) -> None:
        terminal = self.meta.get("terminal")
        ends = [i for i, e in enumerate(self.events) if e["event_type"] == chain.RUN_END]
        if not isinstance(terminal, Mapping) or not ends:
            self.report.fail("BREAKGLASS_CHAIN_TRUNCATED", "no signed terminal event")
            return
        if ends != [len(self.events) - 1]:
            self.report.fail("BREAKGLASS_EVENT_AFTER_TERMINAL", "events follow the terminal event")
        body = verify_envelope(
            terminal, expected_types={RUN_END_TYPE}, allowed_signers=self.trust.agent_dids
        ).payload
        index = ends[0]
        head = self.events[index - 1]["event_hash_b64u"] if index else None
        if body.get("event_count") != index or body.get("head_hash_b64u") != head:
            self.report.fail("BREAKGLASS_CHAIN_TRUNCATED", "terminal count or head does not match")
        if body.get("outcome") != self.meta.get("run", {}).get("outcome"):
            self.report.fail("BREAKGLASS_OUTCOME_MISMATCH", "terminal outcome differs from run")

    def _check_approvals(self) -> None:
        """Each agent token was preceded by enough distinct, non-requester approvals of the
        very plan it is pinned to; a withdrawal or denial before issue cancels an approval."""
        approvals = sorted(
            self.payload.get("human_approval_receipts", []), key=lambda a: _ts(a["timestamp"])
        )
        for claims in self.tokens.values():
            if str(claims.get("sub", "")).startswith("breakglass:agent"):
                self._check_token_approvals(claims, approvals)

    def _check_token_approvals(
        self, claims: Mapping[str, Any], approvals: Sequence[Mapping[str, Any]]
    ) -> None:
        plan_hash = claims["policy_hash_b64u"]
        policy = self.by_hash.get(plan_hash, self.policy)
        issued = from_epoch(int(claims["iat"]))
        on_plan = [a for a in approvals if a.get("plan_hash_b64u") == plan_hash]
        latest: dict[str, str] = {}
        for approval in on_plan:
            if _second(approval["timestamp"]) <= issued:
                latest[str(approval.get("approver_subject"))] = approval["approval_type"]
        approvers = {who for who, kind in latest.items() if kind == "explicit_approve"}
        requester = policy.terms.get("requester")
        if requester in approvers:
            self.report.fail("BREAKGLASS_SELF_APPROVAL", "the requester approved their own request")
        needed = int(policy.terms.get("approvals", {}).get("min_approvers", 2))
        if len(approvers - {requester}) >= needed:
            return
        late = any(_second(a["timestamp"]) > issued for a in on_plan)
        code = "BREAKGLASS_APPROVAL_AFTER_ISSUE" if late else "BREAKGLASS_APPROVALS_INSUFFICIENT"
        self.report.fail(
            code, f"{len(approvers)} approver(s) before token {claims['jti']}, {needed} needed"
        )

    def _check_calls(self) -> list[_Call]:
        allowed = {t for p in self.policies for t in p.tools_with_role(set(ToolRole))}
        revoked = {
            r["payload"]["jti"]: _ts(r["payload"]["revoked_at"])
            for r in self.meta.get("revocations", [])
        }
        calls = []
        for item in self.payload.get("tool_receipts", []):
            body = item.get("payload", item)
            scope = body.get("binding", {}).get("token_scope_hash_b64u")
            call = _Call(
                _ts(body["timestamp"]),
                body["tool_name"],
                body.get("result_status", "success"),
                body["args_hash_b64u"],
                scope,
            )
            calls.append(call)
            if call.status != "success":
                continue  # refused or failed: nothing happened under it
            self._check_success_call(call, allowed, revoked)
        return sorted(calls, key=lambda c: c.at)

    def _check_success_call(
        self, call: _Call, allowed: set[str], revoked: Mapping[str, datetime]
    ) -> None:
        if call.tool not in allowed:
            self.report.fail("BREAKGLASS_CALL_OUTSIDE_POLICY", f"{call.tool} is not in the WPC")
        claims = self.tokens.get(call.token_scope_hash or "")
        if claims is None:
            self.report.fail("BREAKGLASS_CALL_WITHOUT_TOKEN", f"{call.tool} names no token")
            return
        skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
        start, end = from_epoch(int(claims["iat"])), from_epoch(int(claims["exp"]))
        if not start - skew <= call.at <= end + skew:
            self.report.fail(
                "BREAKGLASS_CALL_OUTSIDE_WINDOW", f"{call.tool} ran outside its token window"
            )
        cut = revoked.get(str(claims["jti"]))
        if cut is not None and call.at > cut:
            self.report.fail(
                "BREAKGLASS_CALL_AFTER_REVOCATION", f"{call.tool} ran after revocation"
            )

    def _check_revocations(self) -> None:
        revoked = set()
        for record in self.meta.get("revocations", []):
            body = verify_envelope(
                record,
                expected_types={REVOCATION_TYPE},
                allowed_signers=self.trust.token_issuer_dids,
            ).payload
            revoked.add(body["jti"])
        for claims in self.tokens.values():
            if claims["jti"] not in revoked:
                self.report.fail(
                    "BREAKGLASS_REVOCATION_MISSING", f"token {claims['jti']} never revoked"
                )

    def _planned(self, path: Sequence[str]) -> tuple[str, str]:
        node: Any = self.policy.terms
        for key in path:
            node = node[key]
        return str(node["tool"]), content_hash(node["arguments"])

    def _check_rollback(self, calls: list[_Call]) -> None:
        ok = [c for c in calls if c.status == "success"]
        write_tool, _ = self._planned(("action",))
        writes = [c for c in ok if c.tool == write_tool]
        self.rollback_verified = not writes
        if not writes:
            return
        verify_after_write = self._planned(("verify_action",))
        if not any(
            c.at >= writes[0].at and (c.tool, c.args_hash) == verify_after_write for c in ok
        ):
            self.report.fail("BREAKGLASS_VERIFICATION_MISSING", "no verified read after the write")
        steps = [
            (str(step["tool"]), content_hash(step["arguments"]))
            for step in self.policy.terms["rollback"]["steps"]
        ]
        done = [c for c in ok if (c.tool, c.args_hash) in steps and c.at >= writes[-1].at]
        if not done:
            self.report.fail("BREAKGLASS_ROLLBACK_MISSING", "no receipted rollback after the write")
            return
        verify_after_rollback = self._planned(("rollback", "verify"))
        verified = any(
            c.at >= done[-1].at and (c.tool, c.args_hash) == verify_after_rollback for c in ok
        )
        if not verified:
            self.report.fail(
                "BREAKGLASS_VERIFICATION_MISSING", "no verified read after the rollback"
            )
        self.rollback_verified = verified

    def _summarise(self, calls: list[_Call]) -> None:
        run = self.meta.get("run", {})
        self.report.summary = {
            "policy_id": self.policy.payload.get("policy_id"),
            "policy_hash_b64u": self.policy.policy_hash_b64u,
            "job_id": self.run_id,
            "requester": self.policy.terms.get("requester"),
            "approvals": [
                {
                    "approver": a.get("approver_subject"),
                    "type": a["approval_type"],
                    "at": a["timestamp"],
                }
                for a in self.payload.get("human_approval_receipts", [])
            ],
            "tokens": [
                {
                    "jti": c["jti"],
                    "kind": str(c.get("sub", "")).split(":")[1]
                    if ":" in str(c.get("sub", ""))
                    else TokenKind.AGENT,
                    "from": from_epoch(int(c["iat"])).isoformat(),
                    "until": from_epoch(int(c["exp"])).isoformat(),
                }
                for c in self.tokens.values()
            ],
            "timeline": [
                {"at": c.at.isoformat(), "tool": c.tool, "status": c.status} for c in calls
            ],
            "model_calls": len(self.payload.get("receipts", [])),
            "outcome": run.get("outcome"),
            "rollback_verified": self.rollback_verified,
            "kill": run.get("ended_by"),
        }
