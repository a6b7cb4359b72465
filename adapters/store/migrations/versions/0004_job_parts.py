"""Job parts: the WPC payloads and envelopes of job documents, stored once by content hash.

A job document held its WPC three times and was rewritten whole on every receipt; from this
revision the store keeps those members in ``job_parts`` and the document names them
(``adapters.store.parts``). Documents already stored are left as they are: they are read
as written (members inline), and each job's next write stores its members as parts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_parts",
        sa.Column("part_hash_b64u", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("part_hash_b64u", name="pk_job_parts"),
    )


def downgrade() -> None:
    """Put every part back into the documents that name it, then drop the table."""
    conn = op.get_bind()
    query = sa.text("SELECT part_hash_b64u, body FROM job_parts")
    bodies: dict[str, str] = {ref: body for ref, body in conn.execute(query)}

    def inline(obj: dict[str, Any]) -> Any:
        ref = obj.get("$part") if len(obj) == 1 else None
        return json.loads(bodies[ref]) if isinstance(ref, str) else obj

    jobs = conn.execute(sa.text("SELECT job_id, document FROM jobs")).all()
    for job_id, document in jobs:
        if '"$part"' in document:
            doc = json.loads(document, object_hook=inline)
            text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
            update = "UPDATE jobs SET document = :document WHERE job_id = :job_id"
            conn.execute(sa.text(update), {"document": text, "job_id": job_id})
    op.drop_table("job_parts")
