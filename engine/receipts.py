"""Receipts: ``tool_receipt.v1``, ``human_approval_receipt.v1`` and ``gateway_receipt.v1``.

A receipt witnesses one chain event. The event is made first: its ``payload_hash_b64u`` is
the hash of the receipt payload without ``binding`` (:func:`witness_hash`); the receipt is
then bound to the event (``binding.event_hash_b64u``) and signed. A verifier recomputes the
witness hash from the receipt, so neither can be swapped for another. Hash-only: arguments
and results appear only as hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.canonical import insertion_order_json, jcs
from engine.did import Signer
from engine.encoding import sha256_b64u
from engine.envelope import sign_envelope
from engine.timeutil import iso_ms

TOOL_RECEIPT = "tool_receipt"
HUMAN_APPROVAL_RECEIPT = "human_approval_receipt"
GATEWAY_RECEIPT = "gateway_receipt"


@dataclass(frozen=True)
class Binding:
    run_id: str
    policy_hash_b64u: str
    token_scope_hash_b64u: str | None = None
    nonce: str | None = None
    span: Span | None = None  # model calls only: the causal span the receipt declares
    step_up: Mapping[str, Any] | None = None  # approval receipts: the fresh sign-in's evidence

    def to_json(self, event_hash_b64u: str) -> dict[str, str]:
        out = {
            "run_id": self.run_id,
            "event_hash_b64u": event_hash_b64u,
            "policy_hash": self.policy_hash_b64u,
        }
        if self.token_scope_hash_b64u:
            out["token_scope_hash_b64u"] = self.token_scope_hash_b64u
        if self.nonce:
            out["nonce"] = self.nonce
        if self.span is not None:
            out |= self.span.to_json()
        if self.step_up is not None:  # binding values are strings (the reference's schema)
            out["step_up"] = jcs(self.step_up).decode()
        return out


@dataclass(frozen=True)
class Span:
    """A causal span a gateway receipt declares (``receipt_binding.v1`` span fields):
    its id, the span it follows (None for the root) and its lifecycle phase."""

    span_id: str
    parent_span_id: str | None = None
    phase: str = "reasoning"

    def to_json(self) -> dict[str, str]:
        out = {"span_id": self.span_id, "phase": self.phase}
        if self.parent_span_id:
            out["parent_span_id"] = self.parent_span_id
        return out


def span_id_for(receipt_id: str) -> str:
    """The span a model call declares: one per receipt, derived from its id."""
    return f"span_{receipt_id}"


def content_hash(value: Any) -> str:
    """SHA-256 of the JCS of a JSON value (arguments, results, claims)."""
    return sha256_b64u(jcs(value))


def witness_hash(payload: Mapping[str, Any]) -> str:
    """The hash a chain event carries for the receipt ``payload`` (binding excluded)."""
    return content_hash(_unbound(payload))


def witness_hash_fast(payload: Mapping[str, Any]) -> str:
    """The same hash computed over insertion order: equal to :func:`witness_hash` for the
    key-sorted payloads we produce, and much cheaper; verifiers fall back to JCS."""
    return sha256_b64u(insertion_order_json(_unbound(payload)))


def _unbound(payload: Mapping[str, Any]) -> dict[str, Any]:
    unbound = dict(payload)  # a copy and a pop: a third of a filtering comprehension's cost
    unbound.pop("binding", None)
    return unbound


def _receipt(receipt_id: str, at: datetime, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 receipt payload: the version and id every kind opens with, its own ``fields``,
    then the time it witnesses."""
    return {"receipt_version": "1", "receipt_id": receipt_id, **fields, "timestamp": iso_ms(at)}


def _count(value: int) -> int:
    """Token counts and latencies are whole and never negative, whatever was measured."""
    return max(0, int(value))


def tool_receipt_payload(
    *,
    receipt_id: str,
    tool_name: str,
    arguments: Mapping[str, Any],
    result: Mapping[str, Any],
    status: str,
    agent_did: str,
    at: datetime,
    latency_ms: int,
) -> dict[str, Any]:
    """An unbound tool receipt; ``status`` is success, error or timeout."""
    fields = {
        "tool_name": tool_name,
        "args_hash_b64u": content_hash(arguments),
        "result_hash_b64u": content_hash(result),
        "result_status": status,
        "hash_algorithm": "SHA-256",
        "agent_did": agent_did,
        "latency_ms": _count(latency_ms),
    }
    return _receipt(receipt_id, at, fields)


def human_approval_payload(
    *,
    receipt_id: str,
    approval_type: str,
    approver_subject: str,
    agent_did: str,
    plan_hash_b64u: str,
    summary: str,
    at: datetime,
    minted_capability_id: str | None = None,
    minted_capability_ttl_seconds: int | None = None,
) -> dict[str, Any]:
    """An unbound human approval receipt. The approved scope is the plan (= policy) hash."""
    fields: dict[str, Any] = {
        "approval_type": approval_type,
        "approver_subject": approver_subject,
        "approver_method": "ui_click",
        "agent_did": agent_did,
        "scope_hash_b64u": plan_hash_b64u,
        "scope_summary": summary[:1024],
        "policy_hash_b64u": plan_hash_b64u,
        "plan_hash_b64u": plan_hash_b64u,
        "hash_algorithm": "SHA-256",
    }
    if minted_capability_id is not None:
        fields["minted_capability_id"] = minted_capability_id
        fields["minted_capability_ttl_seconds"] = minted_capability_ttl_seconds or 0
    return _receipt(receipt_id, at, fields)


def gateway_receipt_payload(
    *,
    receipt_id: str,
    gateway_id: str,
    provider: str,
    model: str,
    request_body: bytes,
    response_body: bytes,
    tokens_input: int,
    tokens_output: int,
    latency_ms: int,
    at: datetime,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An unbound model-call receipt over the exact forwarded request and response bytes."""
    fields: dict[str, Any] = {
        "gateway_id": gateway_id,
        "provider": provider,
        "model": model,
        "request_hash_b64u": sha256_b64u(request_body),
        "response_hash_b64u": sha256_b64u(response_body),
        "tokens_input": _count(tokens_input),
        "tokens_output": _count(tokens_output),
        "latency_ms": _count(latency_ms),
    }
    if metadata:
        fields["metadata"] = dict(metadata)
    return _receipt(receipt_id, at, fields)


def bind_and_sign(
    envelope_type: str,
    payload: Mapping[str, Any],
    binding: Binding,
    event_hash_b64u: str,
    signer: Signer,
    at: datetime,
) -> dict[str, Any]:
    # Not sorted here: sign_envelope sorts the whole bound payload, binding included.
    bound = {**payload, "binding": binding.to_json(event_hash_b64u)}
    return sign_envelope(envelope_type, bound, signer, at)
