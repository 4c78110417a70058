"""The idempotency record itself (services.ingest.adapters.dedupe_store.DedupeStore), on both backends it runs on: PostgreSQL
(production, raw asyncpg) and SQLite (the embedded `radar up` default, SQLAlchemy). Each case is one rule of the
claim / mark / release protocol, driven with explicit clocks so leases and windows are exact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from services.ingest.adapters.dedupe_store import DedupeStore
from services.ingest.adapters.tables import IngestedEvent, IngestProducedClaim
from services.ingest.domain.errors import BrokerUnavailable, KeyRevoked
from shared.auth import KeyStore
from shared.db import create_engine, sessionmaker
from shared.schemas import utcnow

WINDOW, LEASE = timedelta(days=7), timedelta(seconds=30)
ITEMS = [("e1", "acme"), ("e2", "acme"), ("e3", "globex")]


@pytest.fixture
async def backend(backend_database_url: str) -> AsyncIterator[tuple[DedupeStore, KeyStore]]:
    engine = create_engine(backend_database_url)
    store = DedupeStore(engine, WINDOW, LEASE)
    try:
        yield store, KeyStore(sessionmaker(engine))
    finally:
        await store.close()
        await engine.dispose()


async def test_new_ids_are_claimed_and_once_marked_are_duplicates(backend) -> None:
    store, _keys = backend
    claim = await store.claim(ITEMS)
    assert claim.claimed == ["e1", "e2", "e3"] and not claim.duplicates and not claim.busy
    await store.mark_produced(claim)
    again = await store.claim([*ITEMS, ("e4", "acme")])
    assert again.claimed == ["e4"] and again.duplicates == {"e1", "e2", "e3"} and not again.busy


async def test_an_unmarked_claim_is_busy_until_its_lease_runs_out(backend) -> None:
    store, _keys = backend
    now = utcnow()
    first = await store.claim(ITEMS, now=now)
    assert first.claimed == ["e1", "e2", "e3"] and first.taken_over == {}
    within = await store.claim(ITEMS[:1], now=now + LEASE - timedelta(seconds=1))
    assert within.busy == {"e1"} and not within.claimed and not within.duplicates, "held, not a duplicate: never dropped"
    after = await store.claim([ITEMS[0], ("e9", "acme")], now=now + LEASE + timedelta(seconds=1))
    assert after.claimed == ["e1", "e9"], "a claim left by a dead process is taken over once its lease has run out"
    assert after.taken_over == {"e1": now}, "with the lapsed claim's time: its events may be on Kafka already"
    await store.mark_produced(first)
    late = await store.claim(ITEMS, now=now + LEASE + timedelta(seconds=2))
    assert late.busy == {"e1"}, "the first claim's mark touches only the rows it still holds"
    assert late.duplicates == {"e2", "e3"}


async def test_a_released_claim_is_free_at_once(backend) -> None:
    store, _keys = backend
    claim = await store.claim(ITEMS)
    await store.release(claim)
    assert (await store.claim(ITEMS)).claimed == ["e1", "e2", "e3"]


async def test_holding_marks_on_success_and_releases_on_failure(backend) -> None:
    store, _keys = backend
    with pytest.raises(RuntimeError):
        async with store.holding(ITEMS[:2]) as claim:
            assert claim.claimed == ["e1", "e2"]
            raise RuntimeError("the produce failed")
    async with store.holding(ITEMS) as claim:
        assert claim.claimed == ["e1", "e2", "e3"], "released: the retry claims them again"
    async with store.holding(ITEMS) as claim:
        assert not claim.claimed and claim.duplicates == {"e1", "e2", "e3"}
    async with store.holding([("e9", "acme")]):
        with pytest.raises(BrokerUnavailable, match="another request"):
            async with store.holding([("e9", "acme")]):
                pass


async def test_an_id_produced_before_the_window_is_new_again(backend) -> None:
    store, _keys = backend
    now = utcnow()
    await store.mark_produced(await store.claim(ITEMS, now=now))
    assert (await store.claim(ITEMS, now=now + WINDOW - timedelta(seconds=1))).duplicates == {"e1", "e2", "e3"}
    again = await store.claim(ITEMS, now=now + WINDOW + timedelta(seconds=1))
    assert again.claimed == ["e1", "e2", "e3"] and again.taken_over == {}, "a new event, not a lapsed claim"


async def test_past_the_window_prune_drops_ids_and_claim_marks(backend) -> None:
    store, _keys = backend
    now = utcnow()
    await store.mark_produced(await store.claim(ITEMS, now=now))
    await store.mark_produced(await store.claim([("e4", "acme")], now=now + timedelta(days=1)))
    assert await store.prune(now=now + WINDOW + timedelta(seconds=1)) == 3
    assert await rows(store) == (1, 1 if store._postgres else 0), "the later claim and its mark stay"
    assert (await store.claim([("e4", "acme")], now=now + WINDOW + timedelta(seconds=2))).duplicates == {"e4"}


async def test_ids_recorded_before_claim_marks_keep_their_own_flag(backend) -> None:
    """Rows written before migration 0009 have no claim id: their `produced` column is what counts."""
    store, _keys = backend
    now = utcnow()
    async with store._engine.begin() as connection:
        await connection.execute(
            insert(IngestedEvent),
            [
                {"event_id": "e1", "account_id": "acme", "received_at": now, "produced": True},
                {"event_id": "e2", "account_id": "acme", "received_at": now, "produced": False},
            ],
        )
    claim = await store.claim(ITEMS, now=now + timedelta(seconds=1))
    assert (claim.claimed, claim.duplicates, claim.busy) == (["e3"], {"e1"}, {"e2"})
    assert (await store.claim(ITEMS[1:2], now=now + LEASE + timedelta(seconds=1))).claimed == ["e2"]


async def rows(store: DedupeStore) -> tuple[int, int]:
    """(ids recorded, claim marks recorded)."""
    async with store._engine.connect() as connection:
        ids = await connection.scalar(select(func.count()).select_from(IngestedEvent))
        marks = await connection.scalar(select(func.count()).select_from(IngestProducedClaim))
    return ids or 0, marks or 0


async def test_a_revoked_key_claims_nothing(backend) -> None:
    store, keys = backend
    await keys.create("team")
    key_id = (await keys.list())[0].id
    assert (await store.claim(ITEMS[:1], key_id)).claimed == ["e1"]
    assert await keys.revoke("team") == 1
    with pytest.raises(KeyRevoked):
        await store.claim(ITEMS[1:], key_id)
    assert (await store.claim(ITEMS[1:])).claimed == ["e2", "e3"], "the refused claim left no row behind"
