"""The event chain (``event_chain.v1``): one run id, events linked by ``prev_hash_b64u``.

An event's hash is SHA-256 of ``JSON.stringify({event_id, run_id, event_type, timestamp,
payload_hash_b64u, prev_hash_b64u})`` in exactly that key order, as the reference does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.canonical import insertion_order_json
from engine.encoding import sha256_b64u
from engine.errors import VerificationError
from engine.timeutil import iso_ms

HASHED_FIELDS = (
    "event_id",
    "run_id",
    "event_type",
    "timestamp",
    "payload_hash_b64u",
    "prev_hash_b64u",
)
EVENT_KEYS = frozenset((*HASHED_FIELDS, "event_hash_b64u"))  # an event has these, only

# Event types and the kind of signed artifact each one witnesses.
REQUEST = "request"  # the plan was made (payload: plan hash)
APPROVAL = "human_approval"  # human_approval_receipt
TOKEN_ISSUED = "token_issued"  # CST claims hash
TOOL_CALL = "tool_call"  # tool_receipt (allowed or refused)
LLM_CALL = "llm_call"  # gateway_receipt
REVOCATION = "token_revoked"  # breakglass_revocation record
EXTENSION_REQUEST = "request_extension"  # a longer window was proposed (payload: plan hash)
EXECUTOR_STOP = "executor_stopped"  # breakglass_executor_stop record (a run of the executor ended)
RUN_END = "run_end"  # the signed terminal event: count and head hash


def event_hash(event: Mapping[str, Any]) -> str:
    ordered = {name: event[name] for name in HASHED_FIELDS}
    return sha256_b64u(insertion_order_json(ordered))


def make_event(
    *,
    run_id: str,
    seq: int,
    event_type: str,
    payload_hash_b64u: str,
    prev_hash_b64u: str | None,
    at: datetime,
) -> dict[str, Any]:
    """The next event of a chain; ``seq`` is its 0-based position (part of its id)."""
    event: dict[str, Any] = {
        "event_id": f"evt_{run_id}_{seq:06d}",
        "run_id": run_id,
        "event_type": event_type,
        "timestamp": iso_ms(at),
        "payload_hash_b64u": payload_hash_b64u,
        "prev_hash_b64u": prev_hash_b64u,
    }
    event["event_hash_b64u"] = event_hash(event)
    return event


def check_chain(events: Sequence[Mapping[str, Any]]) -> str:
    """Verify linkage and hashes; return the run id.

    Raises VerificationError: EMPTY_CHAIN, MISSING_EVENT_FIELD, INCONSISTENT_RUN_ID,
    HASH_MISMATCH (an event's own hash), HASH_CHAIN_BREAK (a broken or reordered link).
    Does NOT check what the events mean or that the chain is complete.
    """
    if not events:
        raise VerificationError("EMPTY_CHAIN", "event chain has no entries")
    run_id = events[0].get("run_id")
    prev: str | None = None
    for index, event in enumerate(events):
        if not event.keys() >= EVENT_KEYS:
            raise VerificationError("MISSING_EVENT_FIELD", f"event {index} is incomplete")
        if event["run_id"] != run_id:
            raise VerificationError("INCONSISTENT_RUN_ID", f"event {index} has another run_id")
        if event["prev_hash_b64u"] != prev:
            raise VerificationError("HASH_CHAIN_BREAK", f"event {index} does not link")
        if event_hash(event) != event["event_hash_b64u"]:
            raise VerificationError("HASH_MISMATCH", f"event {index} hash does not match")
        prev = event["event_hash_b64u"]
    return str(run_id)
