"""Building the ``proof_bundle.v1`` of a job, signed by the bot's agent DID.

The reference payload admits no extra top-level fields: the terminal event is the last
``event_chain`` entry (type ``run_end``), and the break-glass additions (WPC envelope, CST
claims, revocation records, the signed terminal record, run metadata, the trust pulse
reference) go under ``metadata.breakglass``, kept compact (the reference caps metadata at
16 KiB, ``MAX_METADATA_BYTES``): the WPCs, token claims and revocation records are each a
list whose later items are merge patches against the first or the previous item (see
``engine.compact``), so an extension or a token renewal costs only what it changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.canonical import jcs
from engine.compact import compact
from engine.did import Signer
from engine.envelope import sign_envelope
from engine.receipts import GATEWAY_RECEIPT, HUMAN_APPROVAL_RECEIPT, TOOL_RECEIPT, content_hash
from engine.timeutil import iso_ms, parse_iso

BUNDLE_TYPE = "proof_bundle"
RUN_END_TYPE = "breakglass_run_end"
REVOCATION_TYPE = "breakglass_revocation"
EXECUTOR_STOP_TYPE = "breakglass_executor_stop"
MAX_METADATA_BYTES = 16 * 1024


def terminal_record(
    *,
    run_id: str,
    event_count: int,
    head_hash_b64u: str | None,
    outcome: str,
    signer: Signer,
    at: datetime,
) -> dict[str, Any]:
    """The signed record that closes a chain: how many events precede it and the head hash."""
    payload = {
        "run_end_version": "1",
        "run_id": run_id,
        "event_count": event_count,
        "head_hash_b64u": head_hash_b64u,
        "outcome": outcome,
        "ended_at": iso_ms(at),
    }
    return sign_envelope(RUN_END_TYPE, payload, signer, at)


def executor_stop_record(
    *, run_id: str, stop: Mapping[str, Any], signer: Signer, at: datetime
) -> dict[str, Any]:
    """The signed record of an executor run's end (halted or exited): counts, no text."""
    payload = {"executor_stop_version": "1", "run_id": run_id, **stop, "stopped_at": iso_ms(at)}
    return sign_envelope(EXECUTOR_STOP_TYPE, payload, signer, at)


def trust_pulse(
    *, run_id: str, agent_did: str, tool_names: Sequence[str], started: datetime, ended: datetime
) -> dict[str, Any]:
    """A ``trust_pulse.v1`` summary: self-reported, never raising trust."""
    counts = Counter(tool_names)
    return {
        "trust_pulse_version": "1",
        "trust_pulse_id": f"tp_{run_id}",
        "run_id": run_id,
        "agent_did": agent_did,
        "issued_at": iso_ms(ended),
        "evidence_class": "self_reported",
        "tier_uplift": False,
        "started_at": iso_ms(started),
        "ended_at": iso_ms(ended),
        "duration_ms": max(0, int((ended - started).total_seconds() * 1000)),
        "tools": [{"name": name[:128], "calls": counts[name]} for name in sorted(counts)][:128],
        "files": [],
    }


def build_bundle(
    *,
    run_id: str,
    events: Sequence[Mapping[str, Any]],
    artifacts: Sequence[Mapping[str, Any]],
    policies: Sequence[Mapping[str, Any]],
    token_claims: Sequence[Mapping[str, Any]],
    run: Mapping[str, Any],
    pulse: Mapping[str, Any],
    signer: Signer,
    at: datetime,
) -> dict[str, Any]:
    """Sign the bundle of a closed chain. ``artifacts`` are the signed envelopes the chain
    witnesses (receipts, revocation records, the terminal record), in chain order;
    ``policies`` every WPC envelope proposed for the job, the request's first.

    Does NOT verify anything it is given: run the verifier on the result.
    """
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for envelope in artifacts:
        by_type.setdefault(envelope["envelope_type"], []).append(envelope)
    terminal = by_type.get(RUN_END_TYPE, [])
    metadata = {
        "breakglass": {
            "bundle_profile": "breakglass.v2",
            "policies": compact(policies),
            "tokens": compact(token_claims),
            "revocations": compact(by_type.get(REVOCATION_TYPE, [])),
            "terminal": terminal[-1] if terminal else None,
            "run": dict(run),
            "trust_pulse_hash_b64u": content_hash(pulse),
        }
    }
    if stops := by_type.get(EXECUTOR_STOP_TYPE):  # absent, not empty: older bundles unchanged
        metadata["breakglass"]["executor_stops"] = compact(stops)
    payload: dict[str, Any] = {
        "bundle_version": "1",
        "bundle_id": f"bundle_{run_id}",
        "agent_did": signer.did,
        "event_chain": [dict(e) for e in events],
        "metadata": metadata,
    }
    sections = (
        ("receipts", by_type.get(GATEWAY_RECEIPT, [])),
        ("tool_receipts", by_type.get(TOOL_RECEIPT, [])),
        (
            "human_approval_receipts",
            anchor_approvals(
                [e["payload"] for e in by_type.get(HUMAN_APPROVAL_RECEIPT, [])],
                by_type.get(GATEWAY_RECEIPT, []),
            ),
        ),
    )
    for name, items in sections:
        if items:
            payload[name] = list(items)
    return sign_envelope(BUNDLE_TYPE, payload, signer, at)


def anchor_approvals(
    approvals: Sequence[Mapping[str, Any]], gateway_receipts: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Approvals anchored to the model-call span they bear on (``binding.span_id``): the
    first model call at or after the decision (the run it enabled), else the latest one
    before it. Without model calls there is no span: approvals stay as they are (legacy,
    which the reference accepts only with causal checks in observe mode; see ADR 0001).
    The witness hash excludes ``binding``, so the anchor does not change the chain."""
    spans = sorted(
        (parse_iso(r["payload"]["timestamp"]), str(r["payload"]["binding"]["span_id"]))
        for r in gateway_receipts
        if "span_id" in r["payload"].get("binding", {})
    )
    if not spans:
        return list(approvals)
    out: list[Mapping[str, Any]] = []
    for approval in approvals:
        at = parse_iso(approval["timestamp"])
        later = [span for when, span in spans if when >= at]
        anchor = later[0] if later else spans[-1][1]
        binding = {**approval.get("binding", {}), "span_id": anchor}
        out.append({**approval, "binding": binding})
    return out


def metadata_size(payload: Mapping[str, Any]) -> int:
    return len(jcs(payload.get("metadata", {})))
