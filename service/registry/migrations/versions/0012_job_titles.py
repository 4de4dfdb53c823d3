"""Studio's job builder: a job's title.

- `jobs.title` (null): the title a job was submitted with (`POST /v1/jobs/submit`, `title`),
  shown in its status and in Studio; a job without one is named by its id.

Review decisions need no column: a rejected item's reason is kept in its result (JSON), beside
its `rejected` flag. Downgrade drops the title; nothing else depends on it.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy of `jobs` (on SQLite that would recreate the table
    # and its items would go with it: ON DELETE CASCADE).
    op.add_column("jobs", sa.Column("title", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "title")  # native DROP COLUMN (SQLite 3.35+): no table copy, no cascade
