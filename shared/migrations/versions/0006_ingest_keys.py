"""ingest:  API key rate limits and the dedupe window

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_tat", sa.Float(), nullable=True))
    op.create_table(
        "ingest_declarations",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "entity_id"),
    )


def downgrade() -> None:
    op.drop_table("ingest_declarations")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_tat")
        batch.drop_column("rate_limit_per_minute")
