"""JSON text for documents, and rows turned back into the engine's records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row

from engine.errors import StoreError
from engine.ports import (
    ApprovalRecord,
    ChainRecord,
    JsonDoc,
    MessageRef,
    ModelExchange,
    OutboxItem,
    Revocation,
    StoredJob,
    TokenRecord,
)


def _plain(value: object) -> object:
    # Records hold ``Mapping``s; read-only views (MappingProxyType, ...) are written as objects.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dump(doc: object) -> str:
    """JSON text that loads back to an equal document (key order and ints kept).

    ASCII-only on purpose: escapes keep NUL (refused by PostgreSQL text) and lone
    surrogates (refused by UTF-8 encoders) intact through both databases.
    """
    try:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=_plain)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store a document that is not JSON: {exc}") from exc


def load(text: str) -> Any:
    return json.loads(text)


def job(row: Row[Any]) -> StoredJob:
    m = row._mapping
    return StoredJob(m["job_id"], m["version"], m["state"], load(m["document"]))


def chain(row: Row[Any]) -> ChainRecord:
    m = row._mapping
    envelope = None if m["envelope"] is None else load(m["envelope"])
    return ChainRecord(m["job_id"], m["seq"], load(m["event"]), envelope)


def approval(row: Row[Any]) -> ApprovalRecord:
    m = row._mapping
    return ApprovalRecord(
        job_id=m["job_id"],
        approver=m["approver"],
        chat_identity=m["chat_identity"],
        decision=m["decision"],
        plan_hash_b64u=m["plan_hash_b64u"],
        at=m["at"],
        receipt_id=m["receipt_id"],
    )


def token(row: Row[Any]) -> TokenRecord:
    m = row._mapping
    return TokenRecord(
        jti=m["jti"],
        job_id=m["job_id"],
        kind=m["kind"],
        claims=load(m["claims"]),
        issued_at=m["issued_at"],
        expires_at=m["expires_at"],
    )


def revocation(row: Row[Any]) -> Revocation:
    m = row._mapping
    return Revocation(m["jti"], m["job_id"], m["revoked_at"], load(m["record"]))


def message_ref(row: Row[Any]) -> MessageRef:
    m = row._mapping
    return MessageRef(m["job_id"], m["platform"], m["kind"], load(m["ref"]))


def outbox_item(row: Row[Any]) -> OutboxItem:
    m = row._mapping
    return OutboxItem(
        item_id=m["item_id"],
        platform=m["platform"],
        job_id=m["job_id"],
        payload=load(m["payload"]),
        attempts=m["attempts"],
        not_before=m["not_before"],
    )


def exchange(row: Row[Any]) -> ModelExchange:
    m = row._mapping
    return ModelExchange(
        receipt_id=m["receipt_id"],
        job_id=m["job_id"],
        request_body=bytes(m["request_body"]),
        response_body=bytes(m["response_body"]),
        at=m["at"],
    )


def doc(text: str) -> JsonDoc:
    """A stored document, which is always a JSON object."""
    loaded = load(text)
    if not isinstance(loaded, dict):
        raise StoreError(f"stored document is a JSON {type(loaded).__name__}, not an object")
    return loaded
