"""Structural checks of a ``proof_bundle.v1`` payload, written from the reference schema.

The verifier runs offline and ships without the reference schema files, so the shape rules
it relies on are restated here. Any violation raises VerificationError
(SCHEMA_VALIDATION_FAILED), before any hash or signature is looked at, as the reference does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from engine.chain import EVENT_KEYS
from engine.envelope import ALLOWED_KEYS, REQUIRED_KEYS
from engine.errors import InputError, VerificationError
from engine.timeutil import parse_iso

_HASHISH = re.compile(r"^[A-Za-z0-9_-]{8,}\Z")
_TOP_LEVEL = {
    "bundle_version",
    "bundle_id",
    "agent_did",
    "eip8004_agent_id",
    "eip8004_registry",
    "urm",
    "event_chain",
    "vir_receipts",
    "receipts",
    "web_receipts",
    "coverage_attestations",
    "binary_semantic_evidence_attestations",
    "tool_receipts",
    "side_effect_receipts",
    "human_approval_receipts",
    "delegation_receipts",
    "rate_limit_claims",
    "attestations",
    "metadata",
}
_ANY_OF = _TOP_LEVEL - {"bundle_version", "bundle_id", "agent_did", "metadata"}
_GATEWAY_REQUIRED = (
    "receipt_version",
    "receipt_id",
    "gateway_id",
    "provider",
    "model",
    "request_hash_b64u",
    "response_hash_b64u",
    "tokens_input",
    "tokens_output",
    "latency_ms",
    "timestamp",
)
_GATEWAY_KEYS = frozenset(_GATEWAY_REQUIRED)
_TOOL_FIELDS = {
    "receipt_version",
    "receipt_id",
    "tool_name",
    "tool_version",
    "args_hash_b64u",
    "result_hash_b64u",
    "result_status",
    "hash_algorithm",
    "agent_did",
    "timestamp",
    "latency_ms",
    "binding",
}
_TOOL_REQUIRED = _TOOL_FIELDS - {"tool_version", "result_status", "binding"}
_APPROVAL_TYPES = {"explicit_approve", "explicit_deny", "auto_approve", "timeout_deny"}
_EFFECT_CLASSES = {"network_egress", "filesystem_write", "external_api_write"}


def fail(message: str) -> VerificationError:
    return VerificationError("SCHEMA_VALIDATION_FAILED", message)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise fail(message)


def _one_of(value: object, choices: Collection[str], message: str) -> None:
    _require(isinstance(value, str) and value in choices, message)


# The helpers below run per item of a large bundle: each message is built only on failure.


def _string(obj: Mapping[str, Any], key: str, *, pattern: re.Pattern[str] | None = None) -> None:
    value = obj.get(key)
    if not (isinstance(value, str) and len(value) >= 1):
        raise fail(f"{key} must be a non-empty string")
    if pattern is not None and not pattern.match(str(value)):
        raise fail(f"{key} has the wrong format")


def _number(obj: Mapping[str, Any], key: str) -> None:
    value = obj.get(key)
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
        raise fail(f"{key} must be a non-negative number")


def _timestamp(obj: Mapping[str, Any], key: str) -> None:
    try:
        parse_iso(obj.get(key))
    except InputError as exc:
        raise fail(f"{key} is not a date-time") from exc


def _list(
    payload: Mapping[str, Any], key: str, *, min_items: int = 0, max_items: int = 0
) -> list[Any]:
    items = payload.get(key)
    _require(isinstance(items, list), f"{key} must be an array")
    assert isinstance(items, list)
    _require(len(items) >= min_items, f"{key} needs at least {min_items} item(s)")
    _require(not max_items or len(items) <= max_items, f"{key} has more than {max_items} items")
    _require(all(isinstance(item, Mapping) for item in items), f"{key} items must be objects")
    return items


def check_event(event: Mapping[str, Any]) -> None:
    _require(event.keys() == EVENT_KEYS, "event fields are not exactly the event_chain.v1 set")
    for key in ("event_id", "run_id", "event_type"):
        _string(event, key)
    _timestamp(event, "timestamp")
    for key in ("payload_hash_b64u", "event_hash_b64u"):
        _string(event, key, pattern=_HASHISH)
    prev = event["prev_hash_b64u"]
    _require(prev is None or (isinstance(prev, str) and bool(_HASHISH.match(prev))), "prev hash")


def check_gateway_envelope(envelope: Mapping[str, Any]) -> None:
    keys = envelope.keys()
    _require(keys <= ALLOWED_KEYS, "gateway receipt envelope fields")
    _require(keys >= REQUIRED_KEYS, "gateway receipt envelope is missing fields")
    _require(envelope["envelope_type"] == "gateway_receipt", "receipts hold gateway_receipt only")
    payload = envelope["payload"]
    _require(isinstance(payload, Mapping), "receipt payload must be an object")
    if not payload.keys() >= _GATEWAY_KEYS:
        missing = next(key for key in _GATEWAY_REQUIRED if key not in payload)
        raise fail(f"gateway receipt is missing {missing}")
    _require(payload["receipt_version"] == "1", "gateway receipt_version must be 1")
    for key in ("tokens_input", "tokens_output", "latency_ms"):
        _number(payload, key)
    _timestamp(payload, "timestamp")


def check_tool_receipt(item: Mapping[str, Any]) -> None:
    """A tool receipt as a payload or inside a tool_receipt envelope."""
    if "envelope_type" in item:
        _require(item.get("envelope_type") == "tool_receipt", "tool receipt envelope type")
        _require(item.keys() <= ALLOWED_KEYS, "tool receipt envelope fields")
        payload = item.get("payload")
        _require(isinstance(payload, Mapping), "tool receipt payload must be an object")
        assert isinstance(payload, Mapping)
        item = payload
    _require(set(item) <= _TOOL_FIELDS, "tool receipt has unknown fields")
    for key in _TOOL_REQUIRED:
        _require(key in item, f"tool receipt is missing {key}")
    _require(item["receipt_version"] == "1", "tool receipt_version must be 1")
    _require(item["hash_algorithm"] == "SHA-256", "tool receipt hash_algorithm")
    _one_of(item.get("result_status", "success"), ("success", "error", "timeout"), "status")
    for key in ("receipt_id", "tool_name", "args_hash_b64u", "result_hash_b64u", "agent_did"):
        _string(item, key)
    _binding(item)
    _number(item, "latency_ms")
    _timestamp(item, "timestamp")


def _binding(item: Mapping[str, Any]) -> None:
    """A receipt's binding, when present, is an object of strings."""
    binding = item.get("binding", {})
    _require(isinstance(binding, Mapping), "binding must be an object")
    _require(all(isinstance(v, str) for v in binding.values()), "binding values must be strings")


def check_human_approval(item: Mapping[str, Any]) -> None:
    for key in ("receipt_version", "receipt_id", "approval_type", "agent_did", "timestamp"):
        _require(key in item, f"human approval receipt is missing {key}")
    _require(item["receipt_version"] == "1", "human approval receipt_version must be 1")
    _one_of(item["approval_type"], _APPROVAL_TYPES, "unknown approval_type")
    _binding(item)
    _string(item, "agent_did")
    _timestamp(item, "timestamp")


def check_side_effect(item: Mapping[str, Any]) -> None:
    required = ("receipt_version", "receipt_id", "effect_class", "hash_algorithm", "agent_did")
    for key in (*required, "timestamp"):
        _require(key in item, f"side effect receipt is missing {key}")
    _one_of(item["effect_class"], _EFFECT_CLASSES, "unknown effect_class")
    _timestamp(item, "timestamp")


_SECTIONS: dict[str, tuple[Callable[[Mapping[str, Any]], None], int, int]] = {
    "event_chain": (check_event, 1, 0),
    "receipts": (check_gateway_envelope, 1, 0),
    "tool_receipts": (check_tool_receipt, 0, 1000),
    "human_approval_receipts": (check_human_approval, 0, 1000),
    "side_effect_receipts": (check_side_effect, 0, 1000),
}


def check_bundle_payload(payload: Mapping[str, Any]) -> None:
    """Raise SCHEMA_VALIDATION_FAILED unless ``payload`` has the proof_bundle.v1 shape.

    Checks the sections breakglass reads; others (urm, vir, web, ...) only by type.
    Does NOT check any hash, signature or binding.
    """
    _require(set(payload) <= _TOP_LEVEL, "unknown top-level field in bundle payload")
    _require(payload.get("bundle_version") == "1", "bundle_version must be 1")
    _string(payload, "bundle_id")
    _string(payload, "agent_did", pattern=re.compile(r"^did:"))
    _require(any(key in payload for key in _ANY_OF), "bundle carries no evidence")
    for key, (check, min_items, max_items) in _SECTIONS.items():
        if key in payload:
            for item in _list(payload, key, min_items=min_items, max_items=max_items):
                check(item)
    _require(isinstance(payload.get("metadata", {}), Mapping), "metadata must be an object")
