"""notifier: fatigue state (snooze, opt-out, open topics, closed alerts, outreach) and the outbox route

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_alerts") as batch:
        batch.add_column(sa.Column("account_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("route", sa.String(length=20), nullable=False, server_default="ping"))
        batch.add_column(sa.Column("route_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("digested_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_alerts_account_id", ["account_id"])
    op.create_table(
        "notifier_attention",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "notifier_open_topics",
        sa.Column("topic_key", sa.String(length=500), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.String(length=200), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic_key"),
    )
    op.create_index("ix_notifier_open_topics_account_id", "notifier_open_topics", ["account_id"])
    op.create_index("ix_notifier_open_topics_alert_id", "notifier_open_topics", ["alert_id"])
    op.create_table(
        "notifier_closed_alerts",
        sa.Column("alert_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_index("ix_notifier_closed_alerts_account_id", "notifier_closed_alerts", ["account_id"])
    op.create_table(
        "notifier_outreach",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("alert_id", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notifier_outreach_account_id", "notifier_outreach", ["account_id"])


def downgrade() -> None:
    op.drop_table("notifier_outreach")
    op.drop_table("notifier_closed_alerts")
    op.drop_table("notifier_open_topics")
    op.drop_table("notifier_attention")
    with op.batch_alter_table("outbox_alerts") as batch:
        batch.drop_index("ix_outbox_alerts_account_id")
        batch.drop_column("digested_at")
        batch.drop_column("route_reason")
        batch.drop_column("route")
        batch.drop_column("account_id")
