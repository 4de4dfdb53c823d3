"""Catalogue items are leased one by one: each job item gets its own lease and fencing token.

Adds to `job_items`: `lease_owner`, `lease_token` (0, only ever goes up), `lease_until`,
`attempts` (0), and an index on `status` to find runnable items fast. Item statuses are now
pending | running | done | failed | canceled.

Revision ID: 0003_item_leases
Revises: 0002_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_item_leases"
down_revision = "0002_jobs"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_job_items_status", ["status"])


def downgrade() -> None:
    # An item that was running under an item lease goes back to pending: the job-level lease
    # of 0002 resumes it at the first unfinished item.
    op.execute(sa.text("UPDATE job_items SET status = 'pending' WHERE status = 'running'"))
    with op.batch_alter_table("job_items") as batch:
        batch.drop_index("ix_job_items_status")
        batch.drop_column("attempts")
        batch.drop_column("lease_until")
        batch.drop_column("lease_token")
        batch.drop_column("lease_owner")
