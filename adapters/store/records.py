"""Write-once records: policies, idempotency keys, revocations, snapshots.

Each is keyed, and a second write of the same key keeps the first value: "already there" is
an answer, not an error.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, exists, select

from adapters.store import codec, notify
from adapters.store.dialect import insert_new
from adapters.store.jobs import revocation_row
from adapters.store.models import IDEMPOTENCY, POLICIES, REVOCATIONS, SNAPSHOTS
from engine.ports import JsonDoc, Revocation


def put_policy(conn: Connection, policy_hash_b64u: str, envelope: JsonDoc) -> bool:
    row = {"policy_hash_b64u": policy_hash_b64u, "envelope": codec.dump(envelope)}
    return not insert_new(conn, POLICIES, row)


def get_policy(conn: Connection, policy_hash_b64u: str) -> JsonDoc | None:
    query = select(POLICIES.c.envelope).where(POLICIES.c.policy_hash_b64u == policy_hash_b64u)
    text = conn.scalar(query)
    return None if text is None else codec.doc(text)


def idempotent_result(conn: Connection, key: str) -> JsonDoc | None:
    text = conn.scalar(select(IDEMPOTENCY.c.result).where(IDEMPOTENCY.c.key == key))
    return None if text is None else codec.doc(text)


def claim_key(conn: Connection, key: str, result: JsonDoc, at: datetime) -> bool:
    row = {"key": key, "result": codec.dump(result), "created_at": at}
    return insert_new(conn, IDEMPOTENCY, row)


def revoke(conn: Connection, revocation: Revocation) -> bool:
    notify.announce(conn, revocation.job_id, revocation.jti)
    return insert_new(conn, REVOCATIONS, revocation_row(revocation))


def is_revoked(conn: Connection, jti: str) -> bool:
    return bool(conn.scalar(select(exists().where(REVOCATIONS.c.jti == jti))))


def revocation(conn: Connection, jti: str) -> Revocation | None:
    row = conn.execute(select(REVOCATIONS).where(REVOCATIONS.c.jti == jti)).one_or_none()
    return None if row is None else codec.revocation(row)


def save_snapshot(conn: Connection, key: str, snapshot: JsonDoc, now: datetime) -> JsonDoc:
    row = {"key": key, "snapshot": codec.dump(snapshot), "created_at": now}
    insert_new(conn, SNAPSHOTS, row)
    stored = load_snapshot(conn, key)
    assert stored is not None  # inserted or already there, in this transaction
    return stored


def snapshot_keys(conn: Connection, prefix: str) -> list[str]:
    """The keys that start with ``prefix``, in order (a prefix of our own: no wildcards)."""
    query = select(SNAPSHOTS.c.key).where(SNAPSHOTS.c.key.startswith(prefix, autoescape=True))
    return list(conn.scalars(query.order_by(SNAPSHOTS.c.key)))


def load_snapshot(conn: Connection, key: str) -> JsonDoc | None:
    text = conn.scalar(select(SNAPSHOTS.c.snapshot).where(SNAPSHOTS.c.key == key))
    return None if text is None else codec.doc(text)
