"""The scoring service's own tables (one schema and one migration chain for all: shared/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.schemas import utcnow


class Account(Base):
    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    domains: Mapped[list[Any]] = mapped_column(default=list)
    plan: Mapped[str | None] = mapped_column(String(200))
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    arr: Mapped[float] = mapped_column(Float, default=0)
    owners: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Score(Base):
    """The current readiness score of an account and the inputs it was computed from."""

    __tablename__ = "scores"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(20), index=True)
    breakdown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # scoring (migration 0004): what the read API filters and shows without unpacking JSON
    owner: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    health: Mapped[float | None] = mapped_column(Float, default=None)
    expansion_arr: Mapped[float | None] = mapped_column(Float, default=None)


class ScoreHistory(Base):
    __tablename__ = "score_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200))
    score: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(String(20))
    breakdown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    signal_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    health: Mapped[float | None] = mapped_column(Float, default=None)  # scoring (migration 0004)
    __table_args__ = (Index("ix_score_history_account_time", "account_id", "created_at"),)


class SignalRecord(Base):
    __tablename__ = "signals"
    signal_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRecord(Base):
    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Plan(Base):
    """The plan catalog scoring prices expansions from; fed by the compacted plan-updates topic."""

    __tablename__ = "plans"
    plan_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    price: Mapped[float] = mapped_column(Float, default=0)
    next_plan: Mapped[str | None] = mapped_column(String(200), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Opportunity(Base):
    """An expansion opportunity an alert opened: identified -> qualified -> proposal -> won / lost.

    Times are event times (the opening alert's signal, the subscription change that closed it) so a
    replayed history measures cycles as they happened; `closed_by_event` lets one upgrade win one opportunity."""

    __tablename__ = "opportunities"
    opportunity_id: Mapped[str] = mapped_column(String(250), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    alert_id: Mapped[str | None] = mapped_column(String(250), default=None)
    signal_type: Mapped[str | None] = mapped_column(String(50), default=None)
    tier: Mapped[str | None] = mapped_column(String(20), default=None)
    owner: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    expected_amount: Mapped[float | None] = mapped_column(Float, default=None)
    amount: Mapped[float | None] = mapped_column(Float, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    identified_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by_event: Mapped[str | None] = mapped_column(String(200), default=None, unique=True)
    alert_count: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OpportunityStageChange(Base):
    """Every stage move, who made it and why: the opportunity's audit trail."""

    __tablename__ = "opportunity_stage_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[str] = mapped_column(String(250), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20), default=None)
    to_stage: Mapped[str] = mapped_column(String(20))
    amount: Mapped[float | None] = mapped_column(Float, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str | None] = mapped_column(String(200), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RevenueChange(Base):
    """The revenue ledger: one row per `subscription_changed` event (its id makes a replay a no-op)."""

    __tablename__ = "revenue_changes"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(index=True)
    arr_before: Mapped[float] = mapped_column(Float)
    arr_after: Mapped[float] = mapped_column(Float)
    plan: Mapped[str | None] = mapped_column(String(200), default=None)
    reason: Mapped[str] = mapped_column(String(20))
    __table_args__ = (Index("ix_revenue_changes_account_time", "account_id", "at"),)


class OutcomeAlert(Base):
    """What signal precision needs of each alert, in columns: signal type, tier, kind and event time."""

    __tablename__ = "outcome_alerts"
    alert_id: Mapped[str] = mapped_column(String(250), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    signal_type: Mapped[str] = mapped_column(String(50))
    tier: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(index=True)


class AppliedAlertAction(Base):
    """An alert action (alert-actions) scoring has applied: Kafka may deliver one again after a restart, and by then
    the account may have a newer opportunity that the repeat must not move."""

    __tablename__ = "applied_alert_actions"
    action_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(index=True)
