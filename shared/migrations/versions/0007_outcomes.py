"""outcomes:  opportunities, revenue ledger, signal outcomes

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opportunities",
        sa.Column("opportunity_id", sa.String(length=250), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.String(length=250), nullable=True),
        sa.Column("signal_type", sa.String(length=50), nullable=True),
        sa.Column("tier", sa.String(length=20), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("expected_amount", sa.Float(), nullable=True),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("identified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by_event", sa.String(length=200), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("opportunity_id"),
        sa.UniqueConstraint("closed_by_event"),
    )
    op.create_index("ix_opportunities_account_id", "opportunities", ["account_id"])
    op.create_index("ix_opportunities_owner", "opportunities", ["owner"])
    op.create_index("ix_opportunities_stage", "opportunities", ["stage"])
    op.create_index("ix_opportunities_identified_at", "opportunities", ["identified_at"])
    op.create_table(
        "opportunity_stage_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("opportunity_id", sa.String(length=250), nullable=False),
        sa.Column("from_stage", sa.String(length=20), nullable=True),
        sa.Column("to_stage", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_opportunity_stage_changes_opportunity_id", "opportunity_stage_changes", ["opportunity_id"])
    op.create_table(
        "revenue_changes",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arr_before", sa.Float(), nullable=False),
        sa.Column("arr_after", sa.Float(), nullable=False),
        sa.Column("plan", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_revenue_changes_at", "revenue_changes", ["at"])
    op.create_index("ix_revenue_changes_account_time", "revenue_changes", ["account_id", "at"])
    op.create_table(
        "outcome_alerts",
        sa.Column("alert_id", sa.String(length=250), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("signal_type", sa.String(length=50), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_index("ix_outcome_alerts_account_id", "outcome_alerts", ["account_id"])
    op.create_index("ix_outcome_alerts_at", "outcome_alerts", ["at"])


def downgrade() -> None:
    op.drop_table("outcome_alerts")
    op.drop_table("revenue_changes")
    op.drop_table("opportunity_stage_changes")
    op.drop_table("opportunities")
