"""Give a broker that lost its topics the accounts and plans the database still has.

The embedded broker behind `radar up` (shared/embedded_broker.py) keeps everything in memory, while SQLite keeps
what ingest declared. Restarted, signals would read an empty account-updates topic and know no limits, so no
usage crossing would ever alert again. `radar up` calls this at start, before signals runs, to publish each
declaration once more exactly as ingest published it (same key, same partition, same `updated_at`, so scoring's
newer-wins rule keeps whatever it already has).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.adapters import DeclarationStore, KafkaPublisher
from services.ingest.service import ACCOUNT, PLAN
from shared.db import create_engine, sessionmaker
from shared.kafka import make_producer
from shared.schemas import AccountUpdate, PlanUpdate
from shared.settings import Settings
from shared.topics import Topics


@dataclass(frozen=True)
class Republished:
    accounts: int
    plans: int


async def republish_declarations(settings: Settings) -> Republished:
    """Plans first, then accounts (an account names its plan), each to its compacted topic."""
    topics = Topics.from_settings(settings)
    engine = create_engine(settings.database_url)
    producer = make_producer(settings)
    try:
        store = DeclarationStore(sessionmaker(engine))
        plans = [PlanUpdate.model_validate(payload) for payload in await store.all(PLAN)]
        accounts = [AccountUpdate.model_validate(payload) for payload in await store.all(ACCOUNT)]
        await producer.start()
        publisher = KafkaPublisher(producer, settings.radar_produce_timeout_s)
        await publisher.publish(topics.plan_updates, [(plan.plan_id.encode(), plan.model_dump_json().encode()) for plan in plans])
        await publisher.publish(
            topics.account_updates, [(account.account_id.encode(), account.model_dump_json().encode()) for account in accounts]
        )
    finally:
        await producer.stop()
        await engine.dispose()
    return Republished(accounts=len(accounts), plans=len(plans))
