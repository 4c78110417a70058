"""ingest: a claim is marked produced by one row per request, not by updating each of its ids

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


def upgrade() -> None:
    # rows claimed before this revision keep their own `produced` flag (their claim_id is NULL)
    with op.batch_alter_table("ingested_events") as batch:
        batch.add_column(sa.Column("claim_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "ingest_produced_claims",
        sa.Column("claim_id", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    op.create_index("ix_ingest_produced_claims_received_at", "ingest_produced_claims", ["received_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("CREATE SEQUENCE ingest_claim_ids"))
        # rows are no longer updated after they are written: new pages may be filled
        op.execute(sa.text("ALTER TABLE ingested_events RESET (fillfactor)"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("ALTER TABLE ingested_events SET (fillfactor = 70)"))
        op.execute(sa.text("DROP SEQUENCE ingest_claim_ids"))
    op.execute(sa.text("UPDATE ingested_events SET produced = true WHERE claim_id IN (SELECT claim_id FROM ingest_produced_claims)"))
    op.drop_index("ix_ingest_produced_claims_received_at", "ingest_produced_claims")
    op.drop_table("ingest_produced_claims")
    with op.batch_alter_table("ingested_events") as batch:
        batch.drop_column("claim_id")
