"""JSON text for documents, and rows turned back into the engine's records."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row, RowMapping

from engine import ports
from engine.errors import StoreError
from engine.ports import JsonDoc

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


def _plain(value: object) -> object:
    # Records hold ``Mapping``s; read-only views (MappingProxyType, ...) are written as objects.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# Built once: ``json.dumps`` with options builds a new encoder per call (three per write).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_plain)


def dump(doc: object) -> str:
    """JSON text that loads back to an equal document (key order and ints kept).

    ASCII-only on purpose: escapes keep NUL (refused by PostgreSQL text) and lone
    surrogates (refused by UTF-8 encoders) intact through both databases.
    """
    try:
        return _ENCODER.encode(doc)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store a document that is not JSON: {exc}") from exc


def load(text: str) -> Any:
    return json.loads(text)


def reader(
    kind: type[R], *, json: Collection[str] = (), binary: Collection[str] = ()
) -> Callable[[Row[Any]], R]:
    """Rows to the engine's record ``kind``, whose fields are named like the columns.

    ``json`` columns hold JSON text (NULL stays None); ``binary`` ones come back as ``bytes``.
    """

    def value(row: RowMapping, name: str) -> Any:
        raw = row[name]
        if name in json:
            return None if raw is None else load(raw)
        return bytes(raw) if name in binary else raw

    def read(row: Row[Any]) -> R:
        return kind(**{f.name: value(row._mapping, f.name) for f in fields(kind)})

    return read


def row_of(record: DataclassInstance, *, json: Collection[str] = ()) -> dict[str, Any]:
    """A record as column values: the inverse of ``reader`` (NULL stays NULL)."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return {k: dump(v) if k in json and v is not None else v for k, v in values.items()}


job = reader(ports.StoredJob, json={"document"})
chain = reader(ports.ChainRecord, json={"event", "envelope"})
approval = reader(ports.ApprovalRecord)
token = reader(ports.TokenRecord, json={"claims"})
revocation = reader(ports.Revocation, json={"record"})
message_ref = reader(ports.MessageRef, json={"ref"})
outbox_item = reader(ports.OutboxItem, json={"payload"})
exchange = reader(ports.ModelExchange, binary={"request_body", "response_body"})


def doc(text: str) -> JsonDoc:
    """A stored document, which is always a JSON object."""
    loaded = load(text)
    if not isinstance(loaded, dict):
        raise StoreError(f"stored document is a JSON {type(loaded).__name__}, not an object")
    return loaded
