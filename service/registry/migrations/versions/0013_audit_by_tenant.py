"""The audit record read by tenant, newest first (Studio's gallery, a brand's own usage).

- `ix_audit_records_tenant_ts` on (`tenant`, `ts`): one tenant's records in time order, a page
  at a time, without reading any other tenant's.
- `ix_audit_records_event` is dropped: nothing filters on the event alone (a handful of values,
  nearly every record a `generation`), so it only cost every answered request a page write.
  The records' writes keep the same number of index entries.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_records_tenant_ts", "audit_records", ["tenant", "ts"])
    op.drop_index("ix_audit_records_event", table_name="audit_records")


def downgrade() -> None:
    op.create_index("ix_audit_records_event", "audit_records", ["event"])
    op.drop_index("ix_audit_records_tenant_ts", table_name="audit_records")
