"""The notifier service's own tables (one schema and one migration chain for all: shared/migrations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.schemas import utcnow


class OpenTopic(Base):
    """The highest level alerted per account, signal and metric while the alert is open (not done/dismissed)."""

    __tablename__ = "notifier_open_topics"
    topic_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    alert_id: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outreach(Base):
    """Customer outreach an owner logged; the fatigue cap counts these per account per quarter."""

    __tablename__ = "notifier_outreach"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    alert_id: Mapped[str | None] = mapped_column(String(200), default=None)
    actor: Mapped[str | None] = mapped_column(String(200), default=None)
    logged_at: Mapped[datetime] = mapped_column(default=utcnow)
