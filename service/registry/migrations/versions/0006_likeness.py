"""Likeness: each twin's adapter fingerprint, and the group of twins that are one person.

- `twin_likeness`: one row per twin whose adapter has been fingerprinted
  (`service.twins.likeness`): the fingerprint scheme's name (a row of another scheme is
  recomputed from the adapter bytes), the fingerprint itself (little-endian float32 vector,
  unit length), and `likeness_id`, the group of twins an admin declared to be the same
  person (a twin's own id when it stands alone). Issue 28's person table can replace
  `likeness_id` with a `person_id` one for one.
  A row outlives its twin's revocation (the twin row is never removed, only marked), so
  a near copy of a revoked likeness stays refused; it goes only with the twin row (CASCADE).

Twins that exist before this revision have no row; they are fingerprinted lazily (at the
gateway's start-up and before any registration compares fingerprints), never here: a
migration must not read adapter stores.

Revision ID: 0006
Revises: 0005_review
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005_review"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "twin_likeness",
        sa.Column("twin_id", sa.String(64), nullable=False),
        sa.Column("likeness_id", sa.String(64), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("twin_id", name="pk_twin_likeness"),
        sa.ForeignKeyConstraint(["twin_id"], ["twins.id"], name="fk_twin_likeness_twin_id_twins", ondelete="CASCADE"),
    )
    op.create_index("ix_twin_likeness_likeness_id", "twin_likeness", ["likeness_id"])


def downgrade() -> None:
    op.drop_index("ix_twin_likeness_likeness_id", table_name="twin_likeness")
    op.drop_table("twin_likeness")
