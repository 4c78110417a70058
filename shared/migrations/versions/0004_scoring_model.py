"""scoring: plan catalog; owner, health and expansion ARR on current scores

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.String(length=200), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("next_plan", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan_id"),
    )
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("health", sa.Float(), nullable=True))
        batch.add_column(sa.Column("expansion_arr", sa.Float(), nullable=True))
        batch.create_index("ix_scores_owner", ["owner"])
    with op.batch_alter_table("score_history") as batch:
        batch.add_column(sa.Column("health", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("score_history") as batch:
        batch.drop_column("health")
    with op.batch_alter_table("scores") as batch:
        batch.drop_index("ix_scores_owner")
        batch.drop_column("expansion_arr")
        batch.drop_column("health")
        batch.drop_column("owner")
    op.drop_table("plans")
