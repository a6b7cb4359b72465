"""The job document's write-once members, stored once and referenced by content hash.

A job document carries the WPC it runs under three times (the plan's payload, the signed
envelope in force, the envelopes published: ~5 KB each). They never change once made, yet
the document is rewritten on every receipt. So the store keeps each once, in ``job_parts``
keyed by the SHA-256 of its JSON text, and the ``jobs`` row holds ``{"$part": hash}`` in
its place: what a receipt rewrites is the small rest of the document.

Which members are parts is fixed here (:data:`PART_MEMBERS`); everything else is stored as
it is, and a document read back is equal to the one written, key order included. Documents
written before migration 0004 hold their members inline and are read as they are; their
next write stores them as parts.

Hashing a part means serialising it, which costs as much as the write it saves, so
:class:`PartCache` remembers the hash of each part *object* it has seen: jobs and their
documents are never mutated (``engine.job``), so one object always has the same text.
For the same reason a part read back is decoded once: every document that names it gets
the one object (a job is read again at each version another replica writes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select

from adapters.store import codec
from adapters.store.dialect import insert_for
from adapters.store.models import JOB_PARTS
from engine.encoding import sha256_b64u
from engine.errors import StoreError
from engine.ports import JsonDoc

REF = "$part"
# Which members are parts: the WPC payload of the plan in force and of a proposed extension,
# the signed envelope in force, and every envelope published.
PART_MEMBERS = "plan.payload, extension.payload, policy_envelope, policies[*]"
CACHE_SIZE = 512  # part objects and stored texts remembered; a miss costs a dump or a read
# (each map; an active job has about two parts, so a few hundred open jobs stay cached)
_READ_CHUNK = 500  # hashes per IN (...) query, well under every driver's parameter limit
_SELECT = select(JOB_PARTS.c.part_hash_b64u, JOB_PARTS.c.body).where(
    JOB_PARTS.c.part_hash_b64u.in_(bindparam("hashes", expanding=True))
)

Parts = dict[str, str]  # hash -> JSON text


class PartCache:
    """Hashes of part objects seen, and parts known to be committed in this database.

    Shared by the event loop (writes split there) and the store's threads (reads join
    there), hence the lock. Both maps are bounded; forgetting only costs time."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        # id(object) -> (the object, kept so its id is not reused; its hash; its text)
        self._objects: OrderedDict[int, tuple[object, str, str]] = OrderedDict()
        self._stored: OrderedDict[str, str] = OrderedDict()  # hash -> text, committed
        self._decoded: OrderedDict[str, JsonDoc] = OrderedDict()  # hash -> the part read

    def split(self, doc: JsonDoc) -> tuple[JsonDoc, Parts]:
        """``doc`` with its parts replaced by references, and the parts this database may
        not hold yet (to insert in the same transaction, then :meth:`committed`)."""
        found: Parts = {}

        def ref(value: Mapping[str, Any]) -> dict[str, str]:
            digest, text = self._hash(value)
            found[digest] = text
            return {REF: digest}

        out = _map_members(doc, ref)
        with self._lock:
            new = {h: t for h, t in found.items() if h not in self._stored}
        return out, new

    def committed(self, parts: Parts) -> None:
        with self._lock:
            for digest, text in parts.items():
                self._remember(self._stored, digest, text)

    def join(self, conn: Connection, docs: list[JsonDoc]) -> list[JsonDoc]:
        """``docs`` as written: each reference replaced by its part (one read for all)."""
        wanted = {ref for doc in docs for ref in _refs(doc)}
        if not wanted:
            return docs
        texts = self._texts(conn, wanted)
        return [self._joined(doc, texts) for doc in docs]

    def _joined(self, doc: JsonDoc, texts: Parts) -> JsonDoc:
        def resolve(value: Mapping[str, Any]) -> Mapping[str, Any]:
            digest = _ref_of(value)
            if digest is None:
                return value  # written inline (before migration 0004)
            return self._decode(digest, texts[digest])

        return _map_members(doc, resolve)

    def _decode(self, digest: str, text: str) -> JsonDoc:
        """The one object of the part ``digest`` (shared, as it was when written)."""
        with self._lock:
            known = self._decoded.get(digest)
            if known is not None:
                self._decoded.move_to_end(digest)
                return known
        part = codec.doc(text)
        self._seen(part, digest, text)
        with self._lock:
            self._remember(self._decoded, digest, part)
        return part

    def _texts(self, conn: Connection, wanted: set[str]) -> Parts:
        with self._lock:
            texts = {h: self._stored[h] for h in wanted if h in self._stored}
        missing = sorted(wanted - texts.keys())
        for start in range(0, len(missing), _READ_CHUNK):
            chunk = missing[start : start + _READ_CHUNK]
            for digest, body in conn.execute(_SELECT, {"hashes": chunk}):
                texts[digest] = body
        lost = wanted - texts.keys()
        if lost:
            raise StoreError(f"stored job refers to missing parts {sorted(lost)[:3]}")
        self.committed({h: texts[h] for h in missing})
        return texts

    def _hash(self, value: Mapping[str, Any]) -> tuple[str, str]:
        with self._lock:
            known = self._objects.get(id(value))
            if known is not None and known[0] is value:
                self._objects.move_to_end(id(value))
                return known[1], known[2]
        text = codec.dump(value)
        digest = sha256_b64u(text.encode())
        self._seen(value, digest, text)
        return digest, text

    def _seen(self, value: object, digest: str, text: str) -> None:
        with self._lock:
            self._remember(self._objects, id(value), (value, digest, text))

    def _remember(self, table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._size:
            table.popitem(last=False)


def insert(conn: Connection, parts: Parts) -> None:
    """Store ``parts``; a part already there (same hash, same text) is left as it is."""
    if parts:
        rows = [{"part_hash_b64u": h, "body": t} for h, t in parts.items()]
        conn.execute(insert_for(conn, JOB_PARTS).on_conflict_do_nothing(), rows)


def _map_members(doc: JsonDoc, fn: Callable[[Mapping[str, Any]], Any]) -> JsonDoc:
    """``doc`` with ``fn`` applied to each part member that is an object (shallow copies:
    the rest of the document is shared, and every key keeps its place)."""
    out = dict(doc)
    for name in ("plan", "extension"):
        plan = out.get(name)
        if isinstance(plan, Mapping) and isinstance(plan.get("payload"), Mapping):
            out[name] = {**plan, "payload": fn(plan["payload"])}
    envelope = out.get("policy_envelope")
    if isinstance(envelope, Mapping):
        out["policy_envelope"] = fn(envelope)
    published = out.get("policies")
    if isinstance(published, list | tuple):
        out["policies"] = [fn(p) if isinstance(p, Mapping) else p for p in published]
    return out


def _refs(doc: JsonDoc) -> Iterable[str]:
    found: list[str] = []

    def note(value: Mapping[str, Any]) -> Mapping[str, Any]:
        digest = _ref_of(value)
        if digest is not None:
            found.append(digest)
        return value

    _map_members(doc, note)
    return found


def _ref_of(member: Mapping[str, Any]) -> str | None:
    """The part hash ``member`` refers to; None when it is written inline."""
    digest = member.get(REF) if len(member) == 1 else None
    return digest if isinstance(digest, str) else None
