"""Begun step-up sign-ins, shared by every replica (the callback may reach any of them).

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
        "pending_sign_ins",
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("state", name="pk_pending_sign_ins"),
    )
    op.create_index("ix_pending_sign_ins_started", "pending_sign_ins", ["started"])


def downgrade() -> None:
    op.drop_index("ix_pending_sign_ins_started", "pending_sign_ins")
    op.drop_table("pending_sign_ins")
