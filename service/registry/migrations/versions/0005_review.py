"""Studio: review of job images, talent keys, and Studio's sign-in sessions.

- `jobs.review` (false): the job's images are held until someone approves or rejects each
  item; `jobs.items_rejected` (0) counts the rejected ones. Item statuses gain
  `awaiting_review` (rendered, held, not delivered) and `rejected` (never delivered).
- `api_keys.twin_ids` (JSON list, null): a `talent` key's restriction to one person's twins.
- `studio_sessions`: one row per signed-in Studio browser: the sha256 of the session id
  (never the id itself), the API key's id (never the key), the session's CSRF token, and
  its expiry.

Revision ID: 0005_review
Revises: 0004_trust
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_review"
down_revision = "0004_trust"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite and PostgreSQL both have it), never a batch copy of `jobs`: on
    # SQLite that drops and recreates the table, and its items would go with it (ON DELETE CASCADE).
    op.add_column("jobs", sa.Column("review", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("items_rejected", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("api_keys", sa.Column("twin_ids", sa.JSON(), nullable=True))
    op.create_table(
        "studio_sessions",
        sa.Column("id_sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id_sha256", name="pk_studio_sessions"),
    )
    op.create_index("ix_studio_sessions_expires_at", "studio_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_studio_sessions_expires_at", table_name="studio_sessions")
    op.drop_table("studio_sessions")
    # Held images go nowhere: items still awaiting review are rejected on the way down.
    op.execute(sa.text("UPDATE job_items SET status = 'failed' WHERE status IN ('awaiting_review', 'rejected')"))
    # A talent key without its restriction would mean nothing to older code: revoke it.
    op.execute(sa.text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE twin_ids IS NOT NULL AND revoked_at IS NULL"))
    op.drop_column("api_keys", "twin_ids")  # native DROP COLUMN (SQLite 3.35+): no table copy, no cascade
    op.drop_column("jobs", "items_rejected")
    op.drop_column("jobs", "review")
