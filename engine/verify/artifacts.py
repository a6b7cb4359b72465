"""Every event has exactly its artifact and every artifact its event; the chain starts at
the WPC and ends in a signed terminal record; every token is pinned and revoked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import chain
from engine.bundle import EXECUTOR_STOP_TYPE, RUN_END_TYPE
from engine.compact import expand
from engine.cst import token_scope_hash
from engine.envelope import verify_envelope
from engine.errors import VerificationError
from engine.receipts import content_hash, witness_hash, witness_hash_fast
from engine.verify.evidence import Evidence

EventKey = tuple[str, str]


def check_request(ev: Evidence) -> None:
    first = ev.events[0]
    if any(p.job_id != ev.run_id for p in ev.policies):
        ev.report.fail("BREAKGLASS_POLICY_MISMATCH", "a WPC belongs to another job")
    if first["event_type"] != chain.REQUEST or (
        first["payload_hash_b64u"] != ev.policy.policy_hash_b64u
    ):
        ev.report.fail("BREAKGLASS_POLICY_MISMATCH", "the chain does not start at this WPC")


def check_tokens(ev: Evidence) -> dict[str, list[Mapping[str, Any]]]:
    """Token claims by scope hash (renewals share one); each pinned to this WPC and job and
    self-consistent."""
    tokens: dict[str, list[Mapping[str, Any]]] = {}
    by_hash = ev.by_hash
    for claims in ev.token_claims:
        if "token_scope_hash_b64u" not in claims:
            raise VerificationError("SCHEMA_VALIDATION_FAILED", "token claims")
        if claims.get("policy_hash_b64u") not in by_hash:
            ev.report.fail("BREAKGLASS_POLICY_MISMATCH", "a token is pinned to another WPC")
        if claims.get("mission_id") != ev.run_id:
            ev.report.fail("BREAKGLASS_POLICY_MISMATCH", "a token is for another job")
        if token_scope_hash(claims) != claims["token_scope_hash_b64u"]:
            ev.report.fail("TOKEN_SCOPE_HASH_MISMATCH", "token scope hash")
        tokens.setdefault(claims["token_scope_hash_b64u"], []).append(claims)
    return tokens


def _receipt_bodies(ev: Evidence) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        *((chain.LLM_CALL, env["payload"]) for env in ev.payload.get("receipts", [])),
        *((chain.TOOL_CALL, i.get("payload", i)) for i in ev.payload.get("tool_receipts", [])),
        *((chain.APPROVAL, b) for b in ev.payload.get("human_approval_receipts", [])),
    ]


def _artifact_hashes(ev: Evidence, event_keys: set[EventKey]) -> list[tuple[str, str, str | None]]:
    """(event type, witness hash, bound event hash) of every artifact in the bundle."""
    out: list[tuple[str, str, str | None]] = []
    for kind, body in _receipt_bodies(ev):
        bound = body.get("binding", {}).get("event_hash_b64u")
        out.append((kind, _witness(kind, body, event_keys), bound))
    for claims in ev.token_claims:
        out.append((chain.TOKEN_ISSUED, content_hash(claims), None))
    for record in ev.revocations:
        out.append((chain.REVOCATION, str(record.get("payload_hash_b64u")), None))
    for record in _executor_stops(ev):
        out.append((chain.EXECUTOR_STOP, str(record.get("payload_hash_b64u")), None))
    for policy in ev.policies[1:]:
        out.append((chain.EXTENSION_REQUEST, policy.policy_hash_b64u, None))
    terminal = ev.meta.get("terminal")
    if isinstance(terminal, Mapping):
        out.append((chain.RUN_END, str(terminal.get("payload_hash_b64u")), None))
    return out


def _executor_stops(ev: Evidence) -> list[Mapping[str, Any]]:
    """The signed records of executor runs' ends, each by the agent DID."""
    records = expand(ev.meta.get("executor_stops", []), "metadata.breakglass.executor_stops")
    for record in records:
        verify_envelope(
            record, expected_types={EXECUTOR_STOP_TYPE}, allowed_signers=ev.trust.agent_dids
        )
    return records


def _witness(kind: str, body: Mapping[str, Any], event_keys: set[EventKey]) -> str:
    fast = witness_hash_fast(body)
    return fast if (kind, fast) in event_keys else witness_hash(body)


def check_artifacts(ev: Evidence) -> None:
    """Every event (but the request) has exactly its artifact, and every artifact an event."""
    events = {(e["event_type"], e["payload_hash_b64u"]): e for e in ev.events[1:]}
    seen: set[EventKey] = set()
    for kind, digest, bound_to in _artifact_hashes(ev, set(events)):
        event = events.get((kind, digest))
        if event is None or (kind, digest) in seen:
            ev.report.fail("RECEIPT_BINDING_MISMATCH", f"a {kind} artifact has no event")
            continue
        if bound_to is not None and bound_to != event["event_hash_b64u"]:
            ev.report.fail("RECEIPT_BINDING_MISMATCH", f"a {kind} receipt is bound elsewhere")
        seen.add((kind, digest))
    for key in events.keys() - seen:
        ev.report.fail("BREAKGLASS_RECEIPT_MISSING", f"a {key[0]} event has no receipt")


def check_terminal(ev: Evidence) -> None:
    terminal = ev.meta.get("terminal")
    ends = [i for i, e in enumerate(ev.events) if e["event_type"] == chain.RUN_END]
    if not isinstance(terminal, Mapping) or not ends:
        ev.report.fail("BREAKGLASS_CHAIN_TRUNCATED", "no signed terminal event")
        return
    if ends != [len(ev.events) - 1]:
        ev.report.fail("BREAKGLASS_EVENT_AFTER_TERMINAL", "events follow the terminal event")
    body = verify_envelope(
        terminal, expected_types={RUN_END_TYPE}, allowed_signers=ev.trust.agent_dids
    ).payload
    index = ends[0]
    head = ev.events[index - 1]["event_hash_b64u"] if index else None
    if body.get("event_count") != index or body.get("head_hash_b64u") != head:
        ev.report.fail("BREAKGLASS_CHAIN_TRUNCATED", "terminal count or head does not match")
    if body.get("outcome") != ev.meta.get("run", {}).get("outcome"):
        ev.report.fail("BREAKGLASS_OUTCOME_MISMATCH", "terminal outcome differs from run")


def check_revocations(ev: Evidence) -> None:
    revoked = {record["payload"]["jti"] for record in ev.revocations}  # verified when loaded
    for claims in ev.token_claims:
        if claims["jti"] not in revoked:
            ev.report.fail("BREAKGLASS_REVOCATION_MISSING", f"token {claims['jti']} never revoked")
