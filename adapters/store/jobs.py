"""Job transactions: create and compare-and-set update, with everything a transition writes.

Each function runs inside the caller's transaction (``SqlStore`` opens one per call); any
exception raised here rolls all of it back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.store import claims, codec, exchanges, notify, parts
from adapters.store.dialect import insert_new
from adapters.store.models import APPROVALS, CHAIN, IDEMPOTENCY, JOBS, REVOCATIONS, TOKENS
from adapters.store.prepared import prepared
from engine.errors import ConcurrentUpdate, JobNotFound, StoreError
from engine.ports import (
    ApprovalRecord,
    ChainRecord,
    JobUpdate,
    JsonDoc,
    Revocation,
    StoredJob,
    TokenRecord,
)

Stored = tuple[JsonDoc, parts.Parts]  # a document as the row holds it, and its new parts

# Built once: this is the hot path, and building a statement costs more than running it
# (and these two run as prepared driver SQL: adapters.store.prepared).
_CAS = (
    update(JOBS)
    .where(JOBS.c.job_id == bindparam("b_job_id"), JOBS.c.version == bindparam("b_version"))
    .values(
        version=JOBS.c.version + 1,
        state=bindparam("b_state", type_=JOBS.c.state.type),
        document=bindparam("b_document", type_=JOBS.c.document.type),
        updated_at=bindparam("b_updated_at", type_=JOBS.c.updated_at.type),
    )
)
_INSERT_JOB = JOBS.insert()
_INSERT_CHAIN = CHAIN.insert()
_INSERT_APPROVAL = APPROVALS.insert()
_INSERT_TOKEN = TOKENS.insert()
_INSERT_KEY = IDEMPOTENCY.insert()


def create(conn: Connection, up: JobUpdate, stored: Stored, now: datetime) -> StoredJob:
    """``stored``: the document as the row holds it and the parts it names that are new
    (``PartCache.split``)."""
    if up.expected_version != 0:
        raise StoreError(f"create_job needs expected_version 0, got {up.expected_version}")
    _check_owner(up)
    document, new_parts = stored
    row = {
        "job_id": up.job_id,
        "version": 1,
        "state": up.state,
        "document": codec.dump(document),
        "created_at": now,
        "updated_at": now,
    }
    try:
        parts.insert(conn, new_parts)
        conn.execute(_INSERT_JOB, row)
        _claims(conn, up, now)
        _write_children(conn, up, now)
    except IntegrityError as exc:
        raise ConcurrentUpdate(f"job {up.job_id} or one of its keys already exists") from exc
    return StoredJob(up.job_id, 1, up.state, up.document)


def update_cas(conn: Connection, up: JobUpdate, stored: Stored, now: datetime) -> StoredJob:
    """Apply ``up`` when the stored version is still ``up.expected_version``; ``stored`` as
    for :func:`create`.

    The version test sits in the UPDATE's WHERE clause, so it holds across processes: on
    PostgreSQL a racing writer blocks on the row lock, then matches no row.
    """
    _check_owner(up)
    document, new_parts = stored
    params = {
        "b_job_id": up.job_id,
        "b_version": up.expected_version,
        "b_state": up.state,
        "b_document": codec.dump(document),
        "b_updated_at": now,
    }
    if prepared(_CAS, conn.dialect).run(conn, params).rowcount != 1:
        _raise_lost(conn, up)
    parts.insert(conn, new_parts)
    _claims(conn, up, now)  # the claim a job takes as it activates, or GrantClaimed
    try:
        _write_children(conn, up, now)
    except IntegrityError as exc:
        raise ConcurrentUpdate(f"job {up.job_id}: a chain seq or key already exists") from exc
    return StoredJob(up.job_id, up.expected_version + 1, up.state, up.document)


def _raise_lost(conn: Connection, up: JobUpdate) -> None:
    if not conn.scalar(select(exists().where(JOBS.c.job_id == up.job_id))):
        raise JobNotFound(up.job_id)
    raise ConcurrentUpdate(f"job {up.job_id} is no longer at version {up.expected_version}")


def _claims(conn: Connection, up: JobUpdate, now: datetime) -> None:
    if up.claim is not None:
        claims.claim(conn, up.claim, up.job_id, now)
    if up.release_claims:
        claims.release(conn, up.job_id)


def _check_owner(up: JobUpdate) -> None:
    # A transition writes for its own job only; anything else is a caller bug.
    records: list[Any] = [*up.chain, *up.approvals, *up.tokens, *up.revocations, *up.exchanges]
    strays = {r.job_id for r in records} - {up.job_id}
    if strays:
        raise StoreError(f"update of job {up.job_id} carries records of {sorted(strays)}")


def _write_children(conn: Connection, up: JobUpdate, now: datetime) -> None:
    if up.chain:
        prepared(_INSERT_CHAIN, conn.dialect).run(conn, [_chain_row(r) for r in up.chain])
    if up.approvals:
        conn.execute(_INSERT_APPROVAL, [_approval_row(a) for a in up.approvals])
    if up.tokens:
        conn.execute(_INSERT_TOKEN, [_token_row(t) for t in up.tokens])
    for rev in up.revocations:
        # Already revoked is success: revoking is the safe direction and may be repeated.
        insert_new(conn, REVOCATIONS, revocation_row(rev))
        notify.announce(conn, rev.job_id, rev.jti)
    for exchange in up.exchanges:
        exchanges.put(conn, exchange)
    if up.idempotency_key is not None:
        result = codec.dump(up.idempotency_result if up.idempotency_result is not None else {})
        row = {"key": up.idempotency_key, "result": result, "created_at": now}
        conn.execute(_INSERT_KEY, row)


def _chain_row(r: ChainRecord) -> dict[str, Any]:
    return codec.row_of(r, json={"event", "envelope"})


def _approval_row(a: ApprovalRecord) -> dict[str, Any]:
    return codec.row_of(a)


def _token_row(t: TokenRecord) -> dict[str, Any]:
    return codec.row_of(t, json={"claims"})


def revocation_row(rev: Revocation) -> dict[str, Any]:
    return codec.row_of(rev, json={"record"})


def load(conn: Connection, cache: parts.PartCache, job_id: str) -> StoredJob:
    row = conn.execute(select(JOBS).where(JOBS.c.job_id == job_id)).one_or_none()
    if row is None:
        raise JobNotFound(job_id)
    return _joined(conn, cache, [row])[0]


def list_jobs(
    conn: Connection, cache: parts.PartCache, states: Collection[str] | None
) -> list[StoredJob]:
    query = select(JOBS).order_by(JOBS.c.created_at, JOBS.c.job_id)
    if states is not None:
        query = query.where(JOBS.c.state.in_(list(states)))
    return _joined(conn, cache, conn.execute(query).all())


IN_CHUNK = 500  # ids per IN list: well under SQLite's bound parameter limit


def list_changed(
    conn: Connection, cache: parts.PartCache, states: Collection[str], known: Mapping[str, int]
) -> tuple[list[str], list[StoredJob]]:
    """The ids of the jobs in ``states`` (creation order), and those of them whose version is
    not the one ``known`` names, documents joined: a caller that keeps the jobs it decoded
    reads and decodes only what changed. A job changed between the two reads comes back as
    it is now (its state may no longer be one of ``states``)."""
    query = select(JOBS.c.job_id, JOBS.c.version).where(JOBS.c.state.in_(list(states)))
    rows = conn.execute(query.order_by(JOBS.c.created_at, JOBS.c.job_id)).all()
    stale = [job_id for job_id, version in rows if known.get(job_id) != version]
    changed: list[StoredJob] = []
    for at in range(0, len(stale), IN_CHUNK):
        chunk = select(JOBS).where(JOBS.c.job_id.in_(stale[at : at + IN_CHUNK]))
        changed += _joined(conn, cache, conn.execute(chunk).all())
    return [job_id for job_id, _ in rows], changed


def _joined(conn: Connection, cache: parts.PartCache, rows: Sequence[Row[Any]]) -> list[StoredJob]:
    """The jobs of ``rows`` with their documents as written (parts in place)."""
    stored = [codec.job(row) for row in rows]
    docs = cache.join(conn, [s.document for s in stored])
    return [replace(s, document=doc) for s, doc in zip(stored, docs, strict=True)]


def page(
    conn: Connection, cache: parts.PartCache, limit: int, before: str | None
) -> list[StoredJob]:
    """Up to ``limit`` jobs, newest first, starting after the job ``before`` (keyset paging:
    a page costs the same however deep it is, and jobs created meanwhile shift nothing)."""
    if limit < 1:
        raise StoreError(f"a page holds at least one job, not {limit}")
    query = select(JOBS).order_by(JOBS.c.created_at.desc(), JOBS.c.job_id.desc()).limit(limit)
    if before is not None:
        at = conn.scalar(select(JOBS.c.created_at).where(JOBS.c.job_id == before))
        if at is None:
            raise JobNotFound(before)
        older = or_(JOBS.c.created_at < at, and_(JOBS.c.created_at == at, JOBS.c.job_id < before))
        query = query.where(older)
    return _joined(conn, cache, conn.execute(query).all())


def chain(conn: Connection, job_id: str) -> list[ChainRecord]:
    query = select(CHAIN).where(CHAIN.c.job_id == job_id).order_by(CHAIN.c.seq)
    return [codec.chain(row) for row in conn.execute(query)]


def approvals(conn: Connection, job_id: str) -> list[ApprovalRecord]:
    query = select(APPROVALS).where(APPROVALS.c.job_id == job_id)
    return [codec.approval(row) for row in conn.execute(query.order_by(APPROVALS.c.approval_id))]


def tokens(conn: Connection, job_id: str) -> list[TokenRecord]:
    query = select(TOKENS).where(TOKENS.c.job_id == job_id)
    query = query.order_by(TOKENS.c.issued_at, TOKENS.c.jti)
    return [codec.token(row) for row in conn.execute(query)]
