"""Trust: a watermark index, and twins found by their adapter's bytes (likeness revocation).

- `watermarks`: one row per delivered image: its watermark id (16 hex characters, the primary
  key) -> generation id, tenant, twin, image index and time. Written in the guarded path
  before the generation's audit record, so /v1/verify resolves a stripped image (a JPEG
  re-encode drops C2PA, the watermark stays) on any replica with one indexed lookup.
- `ix_twins_adapter_sha256`: a revocation applies to every twin serving the same adapter
  bytes, and bytes bound to another twin are refused at registration; both look twins up by
  `adapter_sha256`.
- Data: a live twin that shares its adapter bytes with a revoked one (registered before this
  revision refused that) is revoked now, with its revision and the registry version bumped so
  every replica evicts it. Not undone by the downgrade: a revocation is final.

Revision ID: 0004_trust
Revises: 0003_item_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_trust"
down_revision = "0003_item_leases"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watermarks",
        sa.Column("watermark_id", sa.String(16), nullable=False),
        sa.Column("generation_id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("twin_id", sa.String(64), nullable=True),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("watermark_id", name="pk_watermarks"),
    )
    op.create_index("ix_watermarks_generation_id", "watermarks", ["generation_id"])
    with op.batch_alter_table("twins") as batch:
        batch.create_index("ix_twins_adapter_sha256", ["adapter_sha256"])
    revoked = sa.text("SELECT t.adapter_sha256 FROM twins t WHERE t.revoked_at IS NOT NULL OR t.deleted")
    copies = op.get_bind().execute(sa.text(
        f"SELECT id FROM twins WHERE revoked_at IS NULL AND NOT deleted AND adapter_sha256 IN ({revoked.text})")).all()
    if copies:
        op.execute(sa.text(f"UPDATE twins SET revoked_at = CURRENT_TIMESTAMP, revision = revision + 1 "
                           f"WHERE revoked_at IS NULL AND NOT deleted AND adapter_sha256 IN ({revoked.text})"))
        op.execute(sa.text("UPDATE registry_state SET version = version + 1 WHERE id = 1"))


def downgrade() -> None:
    with op.batch_alter_table("twins") as batch:
        batch.drop_index("ix_twins_adapter_sha256")
    op.drop_index("ix_watermarks_generation_id", table_name="watermarks")
    op.drop_table("watermarks")
