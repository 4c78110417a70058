"""The ingest service's own tables (one schema and one migration chain for all: shared/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, String, true
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.schemas import utcnow


class IngestDeclaration(Base):
    """The last account or plan each ingest process published (after Kafka's ack): what `GET` reads back, and
    the base a Segment `group` call's partial traits are merged into."""

    __tablename__ = "ingest_declarations"
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestedEvent(Base):
    """The idempotency record every ingest process shares: an id is claimed (`produced` false, `received_at` the
    claim's time) before it is produced, and marked produced once Kafka acknowledged it (migration 0008). On
    PostgreSQL a claim's ids carry its `claim_id` and the mark is one IngestProducedClaim row for all of them
    (migration 0009); SQLite marks each row."""

    __tablename__ = "ingested_events"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    produced: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    claim_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # migration 0010: when this row's claim took over an unmarked claim whose lease ran out, that claim's time: its
    # process may have died after Kafka's ack, so the new claim first looks on Kafka for what it produced
    taken_over_from: Mapped[datetime | None] = mapped_column(default=None)


class IngestProducedClaim(Base):
    """A claim whose ids Kafka acknowledged: every `ingested_events` row still holding `claim_id` is produced."""

    __tablename__ = "ingest_produced_claims"
    claim_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(index=True)
