"""Ingest's use cases: what happens to an accepted request (or a declaration), independent of HTTP.

Order everywhere: claim the request's new ids (one statement, which also checks the key is not revoked), produce
and wait for every ack, record declarations, then mark the ids produced; any failure before the mark releases the
claim, so a retry is produced, never dropped. A produce waits for Kafka's verdict on every record it handed over,
past the produce timeout if need be: a record that lands late is produced, so only the records Kafka refused are
released (the rest marked), and one still undecided leaves the claim to its lease. A crash between the ack and the
mark leaves the claim to its lease; the request that takes it over then looks on Kafka for those ids (they may have
landed) and produces only the ones not there, so the crash neither loses nor repeats an event.
Two requests carrying the same new id at the same instant cannot both produce it: the second gets 503 until the
first has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from services.ingest.adapters.declarations import ACCOUNT, PLAN, DeclarationStore
from services.ingest.adapters.dedupe_store import DedupeStore
from services.ingest.adapters.produced_lookup import ProducedLookup
from services.ingest.adapters.producer import KafkaPublisher
from services.ingest.domain.claims import Claim, fresh_positions
from services.ingest.domain.errors import BrokerUnavailable, PartlyDelivered, Undelivered
from services.ingest.domain.events import ParsedEvents, serialize
from services.ingest.domain.translation import Translation, merge_account
from shared.schemas import (
    AccountUpdate,
    AccountUpsert,
    IngestResult,
    PlanUpdate,
    PlanUpsert,
    SegmentResult,
    SourceIngestResult,
    utcnow,
)
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class IngestHandlers:
    """One method per use case, over the adapters bootstrap.py built."""

    publisher: KafkaPublisher
    dedupe: DedupeStore
    declarations: DeclarationStore
    topics: Topics
    produced: ProducedLookup
    max_inflight: int = 512
    _inflight: int = field(default=0, init=False)

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Bounded waiting on Kafka: past `max_inflight` requests a process answers 503 at once instead of queueing."""
        if self._inflight >= self.max_inflight:
            raise BrokerUnavailable(f"ingest has {self._inflight} requests waiting on Kafka already")
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1

    async def _to_produce(self, claim: Claim, accounts: Mapping[str, str]) -> set[str]:
        """The claimed usage events (id -> account in `accounts`) not on Kafka yet: an id taken over from a claim
        whose lease ran out is looked for there first, as its process may have died after Kafka's ack."""
        lapsed = {event_id: claim.taken_over[event_id] for event_id in claim.taken_over if event_id in accounts}
        if not lapsed:
            return set(claim.claimed)
        found = await self.produced.find(self.topics.usage_events, {i: accounts[i] for i in lapsed}, lapsed.values())
        if found:
            log.warning("%d of %d ids taken over from lapsed claims were on Kafka already; not produced again", len(found), len(lapsed))
        return set(claim.claimed) - found

    async def accept_events(self, parsed: ParsedEvents, key_id: int | None = None) -> IngestResult:
        events = parsed.events
        async with self._slot():
            firsts = fresh_positions([event.id for event in events], set())
            async with self.dedupe.holding([(events[i].id, events[i].account_id) for i in firsts], key_id) as claim:
                taken = await self._to_produce(claim, {events[i].id: events[i].account_id for i in firsts})
                fresh = [i for i in firsts if events[i].id in taken]
                produce = [(events[i].account_id, parsed.payloads[i]) for i in fresh]
                try:
                    await self.publisher.publish_events(self.topics.usage_events, produce)
                except Undelivered as exc:  # what Kafka took counts as produced: a retry finds it a duplicate
                    raise PartlyDelivered([events[fresh[p]].id for p in exc.positions], exc) from exc
        return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))

    async def accept_translation(self, translation: Translation, key_id: int | None = None) -> SourceIngestResult:
        """Segment or CloudEvents: events to usage-events, group calls merged into the account, to account-updates."""
        events, patches = translation.events, translation.accounts
        async with self._slot():
            ids = [event.id for event in events] + [patch.message_id for patch in patches]
            accounts = [event.account_id for event in events] + [patch.account_id for patch in patches]
            firsts = fresh_positions(ids, set())
            async with self.dedupe.holding([(ids[i], accounts[i]) for i in firsts], key_id) as claim:
                taken = await self._to_produce(claim, {ids[i]: accounts[i] for i in firsts if i < len(events)})
                fresh = {i for i in firsts if ids[i] in taken}
                new_events = [events[i] for i in range(len(events)) if i in fresh]
                new_patches = [patch for offset, patch in enumerate(patches) if len(events) + offset in fresh]
                payloads = serialize(new_events, [translation.positions[i] for i in range(len(events)) if i in fresh])

                known = await self.declarations.get_many(ACCOUNT, (patch.account_id for patch in new_patches))
                now = utcnow()
                updates: dict[str, AccountUpdate] = {}
                for patch in new_patches:
                    merged = merge_account(known.get(patch.account_id), patch)
                    update = AccountUpdate(account_id=patch.account_id, updated_at=now, **merged.model_dump())
                    updates[patch.account_id] = update
                    known[patch.account_id] = update.model_dump(mode="json")

                await asyncio.gather(
                    self.publisher.publish_events(
                        self.topics.usage_events, [(e.account_id, p) for e, p in zip(new_events, payloads, strict=True)]
                    ),
                    self.publisher.publish(
                        self.topics.account_updates, [(a.encode(), u.model_dump_json().encode()) for a, u in updates.items()]
                    ),
                )
                await self.declarations.put(ACCOUNT, [(a, u.model_dump(mode="json"), u.updated_at) for a, u in updates.items()])
        accepted = len(new_events) + len(new_patches)
        return SourceIngestResult(accepted=accepted, duplicates=len(ids) - accepted, ignored=translation.ignored)

    async def accept_segment(self, translation: Translation, key_id: int | None = None) -> SegmentResult:
        result = await self.accept_translation(translation, key_id)
        return SegmentResult(**result.model_dump())

    async def upsert_account(self, account_id: str, body: AccountUpsert) -> AccountUpdate:
        update = AccountUpdate(account_id=account_id, updated_at=utcnow(), **body.model_dump())
        await self._declare(ACCOUNT, self.topics.account_updates, account_id, update)
        return update

    async def upsert_plan(self, plan_id: str, body: PlanUpsert) -> PlanUpdate:
        update = PlanUpdate(plan_id=plan_id, updated_at=utcnow(), **body.model_dump())
        await self._declare(PLAN, self.topics.plan_updates, plan_id, update)
        return update

    async def _declare(self, kind: str, topic: str, entity_id: str, update: AccountUpdate | PlanUpdate) -> None:
        """Published to its compacted topic (keyed by its id), then recorded for GET and group calls."""
        async with self._slot():
            await self.publisher.publish(topic, [(entity_id.encode(), update.model_dump_json().encode())])
            await self.declarations.put(kind, [(entity_id, update.model_dump(mode="json"), update.updated_at)])

    async def account(self, account_id: str) -> AccountUpdate | None:
        stored = await self.declarations.get(ACCOUNT, account_id)
        return AccountUpdate.model_validate(stored) if stored else None

    async def plan(self, plan_id: str) -> PlanUpdate | None:
        stored = await self.declarations.get(PLAN, plan_id)
        return PlanUpdate.model_validate(stored) if stored else None


async def prune_forever(dedupe: DedupeStore, every_seconds: float) -> None:
    """Every process prunes; deletes of the same old rows by several processes are harmless."""
    while True:
        try:
            removed = await dedupe.prune()
            if removed:
                log.info("pruned %d event ids older than %s", removed, dedupe.window)
        except Exception:
            log.exception("pruning the dedupe record failed; retrying later")
        await asyncio.sleep(every_seconds)


@dataclass(frozen=True)
class Republished:
    accounts: int
    plans: int


async def republish(declarations: DeclarationStore, publisher: KafkaPublisher, topics: Topics) -> Republished:
    """Every declaration once more exactly as ingest published it (same key, same `updated_at`): plans first, then
    accounts (an account names its plan), each to its compacted topic."""
    plans = [PlanUpdate.model_validate(payload) for payload in await declarations.all(PLAN)]
    accounts = [AccountUpdate.model_validate(payload) for payload in await declarations.all(ACCOUNT)]
    await publisher.publish(topics.plan_updates, [(plan.plan_id.encode(), plan.model_dump_json().encode()) for plan in plans])
    await publisher.publish(
        topics.account_updates, [(account.account_id.encode(), account.model_dump_json().encode()) for account in accounts]
    )
    return Republished(accounts=len(accounts), plans=len(plans))
