"""Grant claims, begun step-up sign-ins and pacing slots: state every replica must share.

``grant_claims``: at most one live job per grant (issue 14, TARGET_BUSY). A job claims its
grant in the write that activates it. Jobs already active before this revision hold no
claim: the engine's own check (read from the open jobs' documents) still refuses requests
and activations on their grants.

``pending_sign_ins``: an approver's step-up callback may reach any replica, and is used once.

``pacing_slots``: tenant-wide request pacing (Conditional Access: 1 request/s per tenant),
shared by every replica; and an index for paging jobs newest first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grant_claims",
        sa.Column("grant_key", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("grant_key", name="pk_grant_claims"),
    )
    op.create_index("ix_grant_claims_job_id", "grant_claims", ["job_id"])
    op.create_table(
        "pending_sign_ins",
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("state", name="pk_pending_sign_ins"),
    )
    op.create_index("ix_pending_sign_ins_started", "pending_sign_ins", ["started"])
    op.create_table(
        "pacing_slots",
        sa.Column("bucket", sa.String(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_pacing_slots"),
    )
    op.create_index("ix_jobs_created_at_job_id", "jobs", ["created_at", "job_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_created_at_job_id", table_name="jobs")
    op.drop_table("pacing_slots")
    op.drop_index("ix_pending_sign_ins_started", table_name="pending_sign_ins")
    op.drop_table("pending_sign_ins")
    op.drop_index("ix_grant_claims_job_id", table_name="grant_claims")
    op.drop_table("grant_claims")
