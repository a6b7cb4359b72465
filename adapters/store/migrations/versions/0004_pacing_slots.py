"""Pacing slots shared by replicas (Conditional Access: 1 request/s per tenant), and an index
for paging jobs newest first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
