"""Initial schema: every table of the store.

Written out in full rather than importing the models, so this revision keeps creating the
same schema when the models later move on.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=False)


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _when(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _int(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def _job_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=f"fk_{table}_job_id_jobs")


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "policies",
        _id("policy_hash_b64u"),
        _text("envelope"),
        sa.PrimaryKeyConstraint("policy_hash_b64u", name="pk_policies"),
    )
    op.create_table(
        "jobs",
        _id("job_id"),
        _int("version"),
        _id("state"),
        _text("document"),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
    )
    _index("jobs", "state")
    op.create_table(
        "chain_events",
        _id("job_id"),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _text("event"),
        _text("envelope", nullable=True),
        _job_fk("chain_events"),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_chain_events"),
    )
    op.create_table(
        "approvals",
        _int("approval_id"),
        _id("job_id"),
        _id("approver"),
        _id("chat_identity"),
        _id("decision"),
        _id("plan_hash_b64u"),
        _when("at"),
        _id("receipt_id"),
        _job_fk("approvals"),
        sa.PrimaryKeyConstraint("approval_id", name="pk_approvals"),
        sa.UniqueConstraint("receipt_id", name="uq_approvals_receipt_id"),
    )
    _index("approvals", "job_id")
    op.create_table(
        "tokens",
        _id("jti"),
        _id("job_id"),
        _id("kind"),
        _text("claims"),
        _when("issued_at"),
        _when("expires_at"),
        _job_fk("tokens"),
        sa.PrimaryKeyConstraint("jti", name="pk_tokens"),
    )
    _index("tokens", "job_id")
    op.create_table(
        "revocations",
        _id("jti"),
        _id("job_id"),
        _when("revoked_at"),
        _text("record"),
        sa.PrimaryKeyConstraint("jti", name="pk_revocations"),
    )
    _index("revocations", "job_id")
    op.create_table(
        "idempotency_keys",
        _id("key"),
        _text("result"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    _index("idempotency_keys", "created_at")
    op.create_table(
        "message_refs",
        _id("job_id"),
        _id("platform"),
        _id("kind"),
        _text("ref"),
        sa.PrimaryKeyConstraint("job_id", "platform", "kind", name="pk_message_refs"),
    )
    op.create_table(
        "outbox",
        _int("item_id"),
        _id("platform"),
        _id("job_id"),
        _text("payload"),
        _int("attempts"),
        _when("not_before"),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("item_id", name="pk_outbox"),
    )
    _index("outbox", "platform", "delivered", "not_before", name="ix_outbox_due")
    _index("outbox", "job_id")
    op.create_table(
        "snapshots",
        _id("key"),
        _text("snapshot"),
        _when("created_at"),
        sa.PrimaryKeyConstraint("key", name="pk_snapshots"),
    )
    op.create_table(
        "model_exchanges",
        _id("receipt_id"),
        _id("job_id"),
        sa.Column("request_body", sa.LargeBinary(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        _when("at"),
        sa.PrimaryKeyConstraint("receipt_id", name="pk_model_exchanges"),
    )
    _index("model_exchanges", "job_id")
    _index("model_exchanges", "at")


def downgrade() -> None:
    # Children before the jobs table they reference; dropping a table drops its indexes.
    for name in (
        "model_exchanges",
        "snapshots",
        "outbox",
        "message_refs",
        "idempotency_keys",
        "revocations",
        "tokens",
        "approvals",
        "chain_events",
        "jobs",
        "policies",
    ):
        op.drop_table(name)
