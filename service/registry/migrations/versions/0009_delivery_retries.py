"""Deliveries survive outages: an item whose S3 delivery fails waits, `delivering`, and is retried.

Adds to `job_items`:
- `deliver_after`: when the next try is due (indexed: every gateway's retrier looks for due items);
- `deliver_by`: the deadline (`ATELIER_DELIVERY_DEADLINE_S` after the first failed try), after
  which the item is failed with `delivery_failed`;
- `deliver_attempts` (0): tries so far; it also fences a retry (a try is recorded only by the
  gateway whose claim set the current count);
- `deliver_error`: the last try's error, as the job's results show it;
- `staged`: the delivery waiting to be made (the result without its images, the sidecar, and
  each image's facts with either the object key of its staged copy or, when no shared object
  store answers, its bytes): the image is never rendered again to retry.

Item statuses gain `delivering` (undecided: the job stays open). Downgrade fails items still
`delivering` with `delivery_failed` (the code that retries them is gone) before dropping the
columns.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
COLUMNS = ("staged", "deliver_error", "deliver_attempts", "deliver_by", "deliver_after")


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy (a batch copy recreates the table on SQLite).
    op.add_column("job_items", sa.Column("deliver_after", TS, nullable=True))
    op.add_column("job_items", sa.Column("deliver_by", TS, nullable=True))
    op.add_column("job_items", sa.Column("deliver_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("job_items", sa.Column("deliver_error", sa.String(500), nullable=True))
    op.add_column("job_items", sa.Column("staged", sa.JSON(), nullable=True))
    op.create_index("ix_job_items_deliver_after", "job_items", ["deliver_after"])


def downgrade() -> None:
    op.execute(sa.text(
        "UPDATE job_items SET status = 'failed', staged = NULL, error = '{\"code\": \"delivery_failed\", "
        "\"message\": \"delivery retries were removed by a schema downgrade\", \"field\": null}' "
        "WHERE status = 'delivering'"))
    op.drop_index("ix_job_items_deliver_after", table_name="job_items")
    for column in COLUMNS:  # native DROP COLUMN (SQLite 3.35+): no table copy, no cascade
        op.drop_column("job_items", column)
