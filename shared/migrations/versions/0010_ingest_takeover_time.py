"""ingest: a claim taken over after its lease keeps the time of the claim it took over

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


def upgrade() -> None:
    # NULL for a first claim; a nullable column without a default is a catalogue change only on PostgreSQL
    with op.batch_alter_table("ingested_events") as batch:
        batch.add_column(sa.Column("taken_over_from", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingested_events") as batch:
        batch.drop_column("taken_over_from")
