"""The person owns the consent: persons above twins, licences they sign, and pay by licence.

- `persons`: who a twin shows (display name, representative, minor flag and guardian, estate
  contact) and the Ed25519 public keys that check their acceptances (their own, their
  representative's, a minor's guardian's).
- `twins.person_id`: each twin's person. Existing twins are migrated one person per likeness
  group (`twin_likeness.likeness_id`: twins an admin declared to be one person share it), else
  one person per twin, named after the twin; its id is the group's (or the twin's) id.
- `licences`: a brand's request to use a person's twin (its canonical terms and their sha256,
  status requested / accepted / declined / revoked), and `licence_signatures`: the signatures
  that accepted or declined it.
- `audit_records.licence_id`: the signed licence a generation was admitted under (pay
  statements group by it).

Downgrade drops them; paper consent records (`consent_records`) are untouched either way.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("representative", sa.String(200), nullable=True),
        sa.Column("minor", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("guardian", sa.String(200), nullable=True),
        sa.Column("estate_contact", sa.String(500), nullable=True),
        sa.Column("public_key", sa.String(64), nullable=True),
        sa.Column("representative_public_key", sa.String(64), nullable=True),
        sa.Column("guardian_public_key", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_persons"),
    )
    # Plain ADD COLUMN (no batch copy of the twins table on SQLite), no foreign key: the
    # persons repository keeps it pointing at a person.
    op.add_column("twins", sa.Column("person_id", sa.String(64), nullable=True))
    op.create_index("ix_twins_person_id", "twins", ["person_id"])
    op.execute(sa.text(
        "INSERT INTO persons (id, display_name, minor, created_at) "
        "SELECT COALESCE(l.likeness_id, t.id), MIN(t.display_name), false, MIN(t.created_at) "
        "FROM twins t LEFT JOIN twin_likeness l ON l.twin_id = t.id GROUP BY COALESCE(l.likeness_id, t.id)"))
    op.execute(sa.text(
        "UPDATE twins SET person_id = COALESCE((SELECT likeness_id FROM twin_likeness l WHERE l.twin_id = twins.id), id)"))
    op.create_table(
        "licences",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("twin_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_licences"),
        sa.ForeignKeyConstraint(["twin_id"], ["twins.id"], name="fk_licences_twin_id_twins", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], name="fk_licences_person_id_persons"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_licences_tenant_id_tenants", ondelete="CASCADE"),
    )
    op.create_index("ix_licences_twin_id", "licences", ["twin_id"])
    op.create_index("ix_licences_person_id", "licences", ["person_id"])
    op.create_index("ix_licences_tenant_id", "licences", ["tenant_id"])
    op.create_table(
        "licence_signatures",
        sa.Column("licence_id", sa.String(40), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("licence_id", "role", name="pk_licence_signatures"),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name="fk_licence_signatures_licence_id_licences",
                                ondelete="CASCADE"),
    )
    op.add_column("audit_records", sa.Column("licence_id", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_records", "licence_id")
    op.drop_table("licence_signatures")
    op.drop_index("ix_licences_tenant_id", table_name="licences")
    op.drop_index("ix_licences_person_id", table_name="licences")
    op.drop_index("ix_licences_twin_id", table_name="licences")
    op.drop_table("licences")
    op.drop_index("ix_twins_person_id", table_name="twins")
    op.drop_column("twins", "person_id")
    op.drop_table("persons")
