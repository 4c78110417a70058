"""Ingest's service layer: what happens to an accepted batch or account, independent of HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.adapters import DedupeStore, KafkaPublisher
from services.ingest.domain import split_new
from shared.schemas import AccountUpdate, AccountUpsert, Event, IngestResult, utcnow
from shared.topics import Topics


@dataclass
class IngestService:
    publisher: KafkaPublisher
    dedupe: DedupeStore
    topics: Topics

    async def accept_events(self, events: list[Event]) -> IngestResult:
        """Produce first, record ids after the ack: a crash in between may repeat an event, never lose one."""
        already = await self.dedupe.seen(event.id for event in events)
        fresh, duplicates = split_new(events, already)
        records = [(event.account_id.encode(), event.model_dump_json().encode()) for event in fresh]
        await self.publisher.publish(self.topics.usage_events, records)
        await self.dedupe.record(fresh)
        return IngestResult(accepted=len(fresh), duplicates=duplicates)

    async def upsert_account(self, account_id: str, body: AccountUpsert) -> AccountUpdate:
        update = AccountUpdate(account_id=account_id, updated_at=utcnow(), **body.model_dump())
        await self.publisher.publish(self.topics.account_updates, [(account_id.encode(), update.model_dump_json().encode())])
        return update
