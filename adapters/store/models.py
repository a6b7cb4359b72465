"""The tables, as SQLModel classes; ``migrations/versions`` must create exactly these.

Documents are JSON text written by :mod:`adapters.store.codec`, not a JSON column type:
text keeps key order and integers exactly as the engine produced them on both databases
(PostgreSQL ``jsonb`` would reorder keys). The store reads and writes through SQLAlchemy
Core on ``Model.__table__``; the classes are the schema, not an ORM session layer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from adapters.store.types import UtcDateTime

# Deterministic constraint names, so a later migration can drop or alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoreModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the store's tables: their own metadata, apart from any other SQLModel user."""


class PolicyRow(StoreModel, table=True):
    __tablename__ = "policies"
    policy_hash_b64u: str = Field(sa_type=String(), primary_key=True)
    envelope: str = Field(sa_type=Text())


class JobRow(StoreModel, table=True):
    __tablename__ = "jobs"
    # Newest first, a page at a time (the console): keyset paging walks this index.
    __table_args__ = (Index("ix_jobs_created_at_job_id", "created_at", "job_id"),)
    job_id: str = Field(sa_type=String(), primary_key=True)
    version: int = Field(sa_type=Integer())
    state: str = Field(sa_type=String(), index=True)
    document: str = Field(sa_type=Text())
    created_at: datetime = Field(sa_type=UtcDateTime())
    updated_at: datetime = Field(sa_type=UtcDateTime())


class JobPartRow(StoreModel, table=True):
    """A write-once member of job documents (a WPC payload or envelope), by the SHA-256 of
    its JSON text; documents hold ``{"$part": hash}`` in its place (``adapters.store.parts``).

    No foreign key: a part is content, which any number of documents may name."""

    __tablename__ = "job_parts"
    part_hash_b64u: str = Field(sa_type=String(), primary_key=True)
    body: str = Field(sa_type=Text())


class ChainRow(StoreModel, table=True):
    """(job_id, seq) is the primary key, so a chain can never fork."""

    __tablename__ = "chain_events"
    job_id: str = Field(sa_type=String(), primary_key=True, foreign_key="jobs.job_id")
    seq: int = Field(sa_type=Integer(), primary_key=True, sa_column_kwargs={"autoincrement": False})
    event: str = Field(sa_type=Text())
    envelope: str | None = Field(sa_type=Text(), nullable=True)


class ApprovalRow(StoreModel, table=True):
    __tablename__ = "approvals"
    approval_id: int | None = Field(sa_type=Integer(), primary_key=True, default=None)
    job_id: str = Field(sa_type=String(), foreign_key="jobs.job_id", index=True)
    approver: str = Field(sa_type=String())
    chat_identity: str = Field(sa_type=String())
    decision: str = Field(sa_type=String())
    plan_hash_b64u: str = Field(sa_type=String())
    at: datetime = Field(sa_type=UtcDateTime())
    receipt_id: str = Field(sa_type=String(), unique=True)


class TokenRow(StoreModel, table=True):
    __tablename__ = "tokens"
    jti: str = Field(sa_type=String(), primary_key=True)
    job_id: str = Field(sa_type=String(), foreign_key="jobs.job_id", index=True)
    kind: str = Field(sa_type=String())
    claims: str = Field(sa_type=Text())
    issued_at: datetime = Field(sa_type=UtcDateTime())
    expires_at: datetime = Field(sa_type=UtcDateTime())


class RevocationRow(StoreModel, table=True):
    """No foreign key: revoking a jti must succeed even when we never stored its token."""

    __tablename__ = "revocations"
    jti: str = Field(sa_type=String(), primary_key=True)
    job_id: str = Field(sa_type=String(), index=True)
    revoked_at: datetime = Field(sa_type=UtcDateTime())
    record: str = Field(sa_type=Text())


class IdempotencyRow(StoreModel, table=True):
    __tablename__ = "idempotency_keys"
    key: str = Field(sa_type=String(), primary_key=True)
    result: str = Field(sa_type=Text())
    created_at: datetime = Field(sa_type=UtcDateTime(), index=True)


class MessageRefRow(StoreModel, table=True):
    __tablename__ = "message_refs"
    job_id: str = Field(sa_type=String(), primary_key=True)
    platform: str = Field(sa_type=String(), primary_key=True)
    kind: str = Field(sa_type=String(), primary_key=True)
    ref: str = Field(sa_type=Text())


class OutboxRow(StoreModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "platform", "delivered", "not_before"),)
    item_id: int | None = Field(sa_type=Integer(), primary_key=True, default=None)
    platform: str = Field(sa_type=String())
    job_id: str = Field(sa_type=String(), index=True)
    payload: str = Field(sa_type=Text())
    attempts: int = Field(sa_type=Integer())
    not_before: datetime = Field(sa_type=UtcDateTime())
    delivered: bool = Field(sa_type=Boolean())
    created_at: datetime = Field(sa_type=UtcDateTime())


class SnapshotRow(StoreModel, table=True):
    __tablename__ = "snapshots"
    key: str = Field(sa_type=String(), primary_key=True)
    snapshot: str = Field(sa_type=Text())
    created_at: datetime = Field(sa_type=UtcDateTime())


class ExchangeRow(StoreModel, table=True):
    __tablename__ = "model_exchanges"
    receipt_id: str = Field(sa_type=String(), primary_key=True)
    job_id: str = Field(sa_type=String(), index=True)
    request_body: bytes = Field(sa_type=LargeBinary())
    response_body: bytes = Field(sa_type=LargeBinary())
    at: datetime = Field(sa_type=UtcDateTime(), index=True)


class LeaseRow(StoreModel, table=True):
    """Which replica runs a job's timer work, rollback and sweep, until ``expires_at``.

    No foreign key: a lease names a job, it is not part of its record."""

    __tablename__ = "job_leases"
    job_id: str = Field(sa_type=String(), primary_key=True)
    owner: str = Field(sa_type=String())
    expires_at: datetime = Field(sa_type=UtcDateTime())


class SignInRow(StoreModel, table=True):
    """A begun step-up sign-in (nonce, PKCE verifier, who and what), until its callback."""

    __tablename__ = "pending_sign_ins"
    state: str = Field(sa_type=String(), primary_key=True)
    document: str = Field(sa_type=Text())
    started: datetime = Field(sa_type=UtcDateTime(), index=True)
    used: bool = Field(sa_type=Boolean(), default=False)


class GrantClaimRow(StoreModel, table=True):
    """The live job holding a grant (``engine.grants``): one per key, so two replicas can
    never both activate a job on one grant. Written with the activating compare-and-set,
    deleted with the write that resolves the job.

    No foreign key: a claim names a job, it is not part of its record."""

    __tablename__ = "grant_claims"
    grant_key: str = Field(sa_type=String(), primary_key=True)
    job_id: str = Field(sa_type=String(), index=True)
    created_at: datetime = Field(sa_type=UtcDateTime())


class PacingRow(StoreModel, table=True):
    """When the next request of a rate-limited bucket (a tenant's Conditional Access) may
    leave, shared by every replica (see ``adapters.store.pacing``)."""

    __tablename__ = "pacing_slots"
    bucket: str = Field(sa_type=String(), primary_key=True)
    next_at: datetime = Field(sa_type=UtcDateTime())


def table(model: type[StoreModel]) -> Table:
    """The Core table of ``model`` (typed, for statements built outside the ORM)."""
    found = model.__table__  # type: ignore[attr-defined]
    assert isinstance(found, Table)
    return found


POLICIES = table(PolicyRow)
JOBS = table(JobRow)
JOB_PARTS = table(JobPartRow)
CHAIN = table(ChainRow)
APPROVALS = table(ApprovalRow)
TOKENS = table(TokenRow)
REVOCATIONS = table(RevocationRow)
IDEMPOTENCY = table(IdempotencyRow)
MESSAGE_REFS = table(MessageRefRow)
OUTBOX = table(OutboxRow)
SNAPSHOTS = table(SnapshotRow)
EXCHANGES = table(ExchangeRow)
LEASES = table(LeaseRow)
SIGN_INS = table(SignInRow)
GRANT_CLAIMS = table(GrantClaimRow)
PACING = table(PacingRow)
