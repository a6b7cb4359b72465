"""The clawsig core checks (the reference verifier's verdicts): envelope, shape, hash,
signature, agent, chain, receipt signatures and bindings, causal spans."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from engine import chain
from engine.bundle import BUNDLE_TYPE
from engine.bundle_schema import check_bundle_payload
from engine.envelope import verify_envelope
from engine.errors import VerificationError
from engine.receipts import GATEWAY_RECEIPT, TOOL_RECEIPT
from engine.verify.causal import check_causal
from engine.verify.signatures import Signed
from engine.verify.trust import Trust


def verify_core(
    envelope: object, trust: Trust, verified: Collection[Signed] = frozenset()
) -> Mapping[str, Any]:
    """The verified bundle payload, or VerificationError with the first core reason code.

    ``verified``: receipt signatures checked elsewhere (see ``engine.verify.signatures``).
    """
    bundle = verify_envelope(
        envelope,
        expected_types={BUNDLE_TYPE},
        allowed_signers=trust.agent_dids,
        check_payload=check_bundle_payload,
    )
    payload = bundle.payload
    if bundle.signer_did != payload["agent_did"]:
        raise VerificationError("PROOF_BUNDLE_AGENT_MISMATCH", "signer is not the bundle agent")
    events = payload.get("event_chain", [])
    run_id = chain.check_chain(events) if events else None
    known = {e["event_hash_b64u"] for e in events}
    _check_receipts(payload, trust, run_id, known, verified)
    check_causal(payload)
    return payload


def _check_receipts(
    payload: Mapping[str, Any],
    trust: Trust,
    run_id: str | None,
    known: set[str],
    verified: Collection[Signed],
) -> None:
    receipts, tool_receipts = payload.get("receipts", []), payload.get("tool_receipts", [])
    for receipt in receipts:
        verify_envelope(
            receipt,
            expected_types={GATEWAY_RECEIPT},
            allowed_signers=trust.gateway_receipt_signer_dids,
            verified=verified,
        )
        _check_binding(receipt["payload"], run_id, known)
    for item in tool_receipts:
        body = _tool_payload(item, trust, verified)
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


def _tool_payload(
    item: Mapping[str, Any], trust: Trust, verified: Collection[Signed]
) -> Mapping[str, Any]:
    if "envelope_type" not in item:
        return item
    return verify_envelope(
        item,
        expected_types={TOOL_RECEIPT},
        allowed_signers=trust.gateway_receipt_signer_dids,
        verified=verified,
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
