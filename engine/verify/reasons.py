"""What each reason code of ``breakglass verify`` means, in one sentence: the one source for
the HTML report and for the tables of ``docs/reason-codes.md`` (a test keeps them equal)."""

from __future__ import annotations

CORE: dict[str, str] = {
    "HASH_MISMATCH": (
        "a payload does not hash to the hash its envelope states: it was edited after signing"
    ),
    "SIGNATURE_INVALID": (
        "a signature does not verify: the envelope was edited or signed by another key"
    ),
    "SIGNER_NOT_ALLOWED": "an envelope was signed by a key the trust file does not name",
    "MALFORMED_ENVELOPE": (
        "an envelope is missing fields or has unreadable ones (also a bad `issued_at`)"
    ),
    "UNKNOWN_ENVELOPE_VERSION": (
        "an envelope of a version this verifier does not know (fails closed)"
    ),
    "UNKNOWN_ENVELOPE_TYPE": "an envelope of an unexpected type where another was required",
    "UNKNOWN_HASH_ALGORITHM": "a hash algorithm other than SHA-256",
    "UNKNOWN_ALGORITHM": "a signature algorithm other than Ed25519",
    "INVALID_DID_FORMAT": "a signer or agent is not a valid `did:key`",
    "SCHEMA_VALIDATION_FAILED": "a field is missing or of the wrong JSON type",
    "HASH_CHAIN_BREAK": "the event chain does not link: an event was removed, reordered or edited",
    "INCONSISTENT_RUN_ID": "events of the chain name different runs",
    "EMPTY_CHAIN": "the event chain is empty",
    "MISSING_EVENT_FIELD": "an event lacks a required field",
    "RECEIPT_BINDING_MISMATCH": "a receipt is bound to another run or to no event of this chain",
    "PROOF_BUNDLE_AGENT_MISMATCH": (
        "the bundle or a tool receipt names another agent than its signer"
    ),
    "HUMAN_APPROVAL_AGENT_MISMATCH": "an approval receipt names another agent than the bundle",
    "SIDE_EFFECT_AGENT_MISMATCH": "a side-effect receipt names another agent than the bundle",
    "TOKEN_SCOPE_HASH_MISMATCH": "a token's scope hash is not the hash of its own claims",
    "PROOF_BUNDLE_METADATA_TOO_LARGE": (
        "`payload.metadata` is above the reference's 16384-byte cap (the reference rejects "
        "such a bundle); the other checks still run"
    ),
}

CAUSAL: dict[str, str] = {
    "CAUSAL_BINDING_NORMALIZATION_FAILED": (
        "a span field is not a non-empty string (or a confidence not a finite number)"
    ),
    "CAUSAL_BINDING_FIELD_CONFLICT": "a span field and its camelCase alias disagree",
    "CAUSAL_RECEIPT_REPLAY_DETECTED": "one receipt id appears twice with different content",
    "CAUSAL_REFERENCE_DANGLING": (
        "a `parent_span_id` or `tool_span_id` names a span no receipt declares"
    ),
    "CAUSAL_CLOCK_CONTRADICTION": (
        "a span is earlier than the span it follows, has two times, or its timestamp is after"
        " its envelope's `issued_at`"
    ),
    "CAUSAL_SPAN_REUSE_CONFLICT": (
        "one span id is declared twice with different parents, phases or confidence"
    ),
    "CAUSAL_PHASE_INVALID": (
        "a span's `phase` is not one of setup, planning, reasoning, execution, observation, "
        "reflection, teardown"
    ),
    "CAUSAL_PHASE_TRANSITION_INVALID": (
        "a span's phase cannot follow its parent's (for example planning after teardown)"
    ),
    "CAUSAL_CYCLE_DETECTED": "spans are each other's parents",
    "CAUSAL_CONFIDENCE_OUT_OF_RANGE": "an attribution confidence outside 0..1",
    "CAUSAL_CONFIDENCE_EVIDENCE_INCONSISTENT": (
        "an attribution confidence above what the span's lineage proves"
    ),
    "CAUSAL_GRAPH_DISCONNECTED": "the model calls' spans do not form one lineage from a root",
    "CAUSAL_HUMAN_APPROVAL_ORPHANED": "an approval is not anchored to a span a model call declares",
    "CAUSAL_SIDE_EFFECT_ORPHANED": (
        "a side-effect receipt is not anchored to a span a model call declares"
    ),
}

BREAKGLASS: dict[str, str] = {
    "BREAKGLASS_POLICY_MISMATCH": (
        "a WPC, token or the chain's first event belongs to another job or policy"
    ),
    "BREAKGLASS_RECEIPT_MISSING": (
        "a chain event has no receipt or record in the bundle (a dropped receipt)"
    ),
    "BREAKGLASS_CHAIN_TRUNCATED": (
        "no signed terminal event, or its count/head does not match the chain"
    ),
    "BREAKGLASS_EVENT_AFTER_TERMINAL": "events follow the terminal event",
    "BREAKGLASS_OUTCOME_MISMATCH": "the signed terminal outcome differs from the run metadata",
    "BREAKGLASS_APPROVALS_INSUFFICIENT": (
        "fewer than `min_approvers` distinct approvals of the token's plan before it was issued"
    ),
    "BREAKGLASS_APPROVAL_AFTER_ISSUE": "as above, and an approval came after the token was issued",
    "BREAKGLASS_SELF_APPROVAL": "the requester approved their own request",
    "BREAKGLASS_APPROVAL_PLAN_MISMATCH": "an approval names another plan",
    "BREAKGLASS_CALL_OUTSIDE_POLICY": "a successful tool call of a tool the WPC does not allow",
    "BREAKGLASS_CALL_WITHOUT_TOKEN": "a successful tool call bound to no token in the bundle",
    "BREAKGLASS_CALL_OUTSIDE_WINDOW": (
        "a successful tool call outside its token's `iat`..`exp` (± skew)"
    ),
    "BREAKGLASS_CALL_AFTER_REVOCATION": "a successful tool call after its token was revoked",
    "BREAKGLASS_MODEL_OUTSIDE_POLICY": (
        "a model call (gateway receipt) to a provider or model its WPC's model statement does"
        " not allow"
    ),
    "BREAKGLASS_REVOCATION_MISSING": "a token with no signed revocation record",
    "BREAKGLASS_ROLLBACK_MISSING": "a successful write with no successful rollback step after it",
    "BREAKGLASS_CONTAINMENT_MISSING": (
        "an end-of-window containment step (revoke the principal's sessions, remove a "
        "credential the window created) has no successful receipt after the removal"
    ),
    "BREAKGLASS_DERIVED_STEP_UNBOUND": (
        "a credential write has no derived removal step matching its receipt's hashes, or a "
        "derived step names no such write"
    ),
    "BREAKGLASS_VERIFICATION_MISSING": (
        "the planned verification read after the write or after the rollback is missing"
    ),
    "BREAKGLASS_STEP_UP_MISSING": (
        "an approval of a plan that requires step-up has no fitting evidence of a fresh"
        " sign-in (none, another principal, without the plan's authentication context, or"
        " older than the plan allows)"
    ),
    "BREAKGLASS_ACTIVITY_MISMATCH": (
        "the activity summary (what the privilege was used for) is not what its receipted "
        "read returned, or names no such read"
    ),
}

REASONS: dict[str, str] = {**CORE, **CAUSAL, **BREAKGLASS}


def meaning(code: str) -> str:
    """The sentence for ``code``; codes of the reference's ``TOKEN_*`` family share one."""
    if code in REASONS:
        return REASONS[code]
    if code.startswith("TOKEN_"):
        return "a scoped token (CST) failed a check: signature, issuer, lifetime or claims"
    return "no description: see docs/reason-codes.md and the reference registry"
