"""The audit log moves into the registry: every record is committed here before the gateway answers.

- `audit_chains`: one hash chain per writer (a gateway process from start to stop): its size,
  last hash and heartbeat, when it ended, how many of its records sealed segments hold
  (`archived`), and the lease (`archiver`, `archiver_until`) a gateway takes to seal and ship
  a chain whose writer died.
- `audit_records` (`log_id`, `seq`): each record's canonical JSON (`line`, what is hashed,
  signed and shipped) and the fields reports filter on (indexed: `day`, `event`,
  `generation_id`).
- `audit_checkpoints` (`log_id`, `tree_size`): signed tree heads.

Records are never updated or deleted; the Object Lock archive keeps the 7-year copy. Downgrade
drops the tables: run it only after every chain is shipped (`atelier audit verify` names any
that is not).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("log_id", sa.String(32), nullable=False),
        sa.Column("writer", sa.String(200), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("archived", sa.BigInteger(), nullable=False),
        sa.Column("archiver", sa.String(200), nullable=True),
        sa.Column("archiver_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("log_id", name="pk_audit_chains"),
    )
    op.create_index("ix_audit_chains_heartbeat_at", "audit_chains", ["heartbeat_at"])
    op.create_table(
        "audit_records",
        sa.Column("log_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("twin_id", sa.String(128), nullable=True),
        sa.Column("generation_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("images", sa.Integer(), nullable=True),
        sa.Column("use", sa.String(64), nullable=True),
        sa.Column("consent_version", sa.Integer(), nullable=True),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["log_id"], ["audit_chains.log_id"], name="fk_audit_records_log_id_audit_chains"),
        sa.PrimaryKeyConstraint("log_id", "seq", name="pk_audit_records"),
    )
    op.create_index("ix_audit_records_day", "audit_records", ["day"])
    op.create_index("ix_audit_records_event", "audit_records", ["event"])
    op.create_index("ix_audit_records_generation_id", "audit_records", ["generation_id"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("log_id", sa.String(32), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["log_id"], ["audit_chains.log_id"], name="fk_audit_checkpoints_log_id_audit_chains"),
        sa.PrimaryKeyConstraint("log_id", "tree_size", name="pk_audit_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_audit_records_generation_id", table_name="audit_records")
    op.drop_index("ix_audit_records_event", table_name="audit_records")
    op.drop_index("ix_audit_records_day", table_name="audit_records")
    op.drop_table("audit_records")
    op.drop_index("ix_audit_chains_heartbeat_at", table_name="audit_chains")
    op.drop_table("audit_chains")
