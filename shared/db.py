"""Database plumbing (the declarative base, engines, dialect-aware inserts, migrations) and the tables more than one
service reads: API keys (every service) and the notifier's alert state (the console and the scoring API read it).
Each service's own tables live in its adapters/tables.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.schemas import utcnow


class _SqliteUtcDateTime(TypeDecorator[datetime]):
    """SQLite keeps no time zone: times are stored in UTC and read back aware, as PostgreSQL's timestamptz
    answers, so code comparing them with aware times works on both (the `radar up` default is SQLite)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: DateTime(timezone=True).with_variant(_SqliteUtcDateTime(), "sqlite"),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ApiKey(Base):
    """Only the SHA-256 of a key is stored: keys are 256-bit random, so a slow hash buys nothing."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # ingest (migration 0006): requests per minute (None = unlimited), and the GCRA "theoretical arrival time"
    # (epoch seconds) that every process advances atomically, so the limit holds across processes
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    rate_tat: Mapped[float | None] = mapped_column(Float, default=None)


class OutboxAlert(Base):
    """The notifier's copy of an alert, written with its deliveries before the Kafka offset is committed."""

    __tablename__ = "outbox_alerts"
    alert_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # notifier (migration 0005): the fatigue decision, and when a held alert went out in a digest
    account_id: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    route: Mapped[str] = mapped_column(String(20), default="ping")
    route_reason: Mapped[str | None] = mapped_column(Text, default=None)
    digested_at: Mapped[datetime | None] = mapped_column(default=None)


class Delivery(Base):
    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("outbox_alerts.alert_id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (
        UniqueConstraint("alert_id", "channel", name="uq_delivery_alert_channel"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )


# ----------------------------------------------------------------------------- scoring (migration 0004)


# ----------------------------------------------------------------------------- notifier (migration 0005)


class AccountAttention(Base):
    """Per account: snoozed until when, opted out or not (the actions API and Slack buttons set these)."""

    __tablename__ = "notifier_attention"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    snoozed_until: Mapped[datetime | None] = mapped_column(default=None)
    opted_out: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClosedAlert(Base):
    """An alert marked done or dismissed (with its reason)."""

    __tablename__ = "notifier_closed_alerts"
    alert_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str | None] = mapped_column(String(200), default=None)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)


# ----------------------------------------------------------------------------- outcomes (migration 0007)


# ----------------------------------------------------------------------------- engine


def create_engine(url: str, pre_ping: bool = True) -> AsyncEngine:
    """SQLite gets WAL and a busy timeout because several service processes write to one file. `pre_ping=False`
    saves a round trip per checkout for a hot path that maps a dropped connection to a retryable answer itself."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=pre_ping, pool_size=10, max_overflow=10)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def insert_for(session: AsyncSession, model: type[Base]) -> Any:
    """A dialect-aware INSERT so `on_conflict_do_nothing/update` works on PostgreSQL and SQLite alike."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    module = sqlite if dialect == "sqlite" else postgresql
    return module.insert(model)


def insert_ignore(session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> Any:
    return insert_for(session, model).values(list(rows)).on_conflict_do_nothing(index_elements=list(keys))


def affected_rows(result: Result[Any]) -> int:
    """How many rows an INSERT/UPDATE/DELETE touched: `execute()` is typed as returning a Result, and only the
    CursorResult it really returns for DML has `rowcount`."""
    return cast(CursorResult[Any], result).rowcount or 0


async def database_ready(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def upgrade_database(url: str) -> None:
    """Run Alembic to the newest revision(s); sync because Alembic drives its own event loop in env.py."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, "heads")
