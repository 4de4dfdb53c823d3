"""Garment review: a consent record can ask that unverified garments be reviewed by a person.

- `consent_records.review_unverified_garments` (false): while no garment classifier runs, a
  catalogue item of this twin whose garment images cannot be verified (a declared label is
  not evidence) is held as `awaiting_review` until someone approves or rejects it; a
  synchronous generation or edit that would need it is refused (`service.tenancy.consent`).

Existing records keep their meaning (false: no review). Signed records never change, so the
flag is set only by recording a new consent version.

The flag holds items through 0005's review gate (their job becomes a review job), so
nothing held needs undoing on the way down: downgrade drops the column, and jobs already
under review stay under review.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy: on SQLite that would recreate consent_records and
    # cascade-delete its consent_tenants rows.
    op.add_column("consent_records", sa.Column("review_unverified_garments", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("consent_records", "review_unverified_garments")
