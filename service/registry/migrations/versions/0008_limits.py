"""Fleet-wide rate limits: one theoretical-arrival-time row per limited bucket.

- `rate_limits` (`bucket` primary key, `tat_us` big integer): the GCRA state of one limit
  shared by every gateway on this registry, e.g. `rpm:<key id>` for a key's requests per
  minute. `tat_us` is the theoretical arrival time in microseconds since the Unix epoch; an
  admission is one atomic upsert that moves it forward by the emission interval only while
  it stays within the burst (`service.registry.limits`).

Rows are derived state: losing them only forgets how much of its budget a key spent in the
last minute, so downgrade simply drops the table.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(96), nullable=False),
        sa.Column("tat_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
