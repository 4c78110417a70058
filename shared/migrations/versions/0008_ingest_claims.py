"""ingest:  dedupe claims (an id is claimed before it is produced, and marked once Kafka acknowledged it)

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
    # rows written before this revision were recorded after Kafka's ack: they are produced
    with op.batch_alter_table("ingested_events") as batch:
        batch.add_column(sa.Column("produced", sa.Boolean(), nullable=False, server_default=sa.true()))
    if op.get_bind().dialect.name == "postgresql":
        # every row is updated once, soon after it is written (claimed, then marked produced): free room in its
        # page lets that be a HOT update, with no new index entries
        op.execute(sa.text("ALTER TABLE ingested_events SET (fillfactor = 70)"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("ALTER TABLE ingested_events RESET (fillfactor)"))
    op.execute(sa.text("DELETE FROM ingested_events WHERE NOT produced"))
    with op.batch_alter_table("ingested_events") as batch:
        batch.drop_column("produced")
