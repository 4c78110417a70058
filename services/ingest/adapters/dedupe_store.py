"""The shared idempotency record (ingested_events): claim before producing, mark produced after Kafka's ack,
release on failure; raw asyncpg on PostgreSQL, SQLAlchemy on SQLite."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters.tables import IngestedEvent, IngestProducedClaim
from services.ingest.domain.claims import Claim, claim_outcome
from services.ingest.domain.errors import BrokerUnavailable, KeyRevoked, OutcomeUnknown, PartlyDelivered
from shared.db import ApiKey, affected_rows
from shared.schemas import utcnow

log = logging.getLogger(__name__)


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """asyncpg resets a connection on its way back to the pool (one more round trip and statement per request);
    the dedupe statements leave no session state behind: no transaction, no SET, no LISTEN, no advisory lock."""


class DedupeStore:
    """The shared idempotency record: claim before producing, mark produced after Kafka's ack, release on failure.

    A replayed id within the window is a duplicate across processes and restarts; a claimed id is never counted as a
    duplicate until it is marked produced, so a crash between claim and ack cannot drop a retried event: a replay
    gets 503 until the claim's lease runs out, then claims it anew. One statement per step, and on PostgreSQL raw
    asyncpg on a small pool of its own without transactions (each statement is atomic): the claim also checks that
    the request's key is not revoked, so a key cached by the auth layer still stops at once."""

    # The claim takes a claim id from a sequence and writes it on every row it claims; the mark is then one
    # ingest_produced_claims row per request instead of an update of each id (half of PostgreSQL's work per event).
    # A row is produced when its own flag says so (rows from before migration 0009) or its claim is marked:
    _ROW_PRODUCED = "(e.produced OR EXISTS (SELECT 1 FROM ingest_produced_claims AS p WHERE p.claim_id = e.claim_id))"
    _CLAIM_PG = f"""
        WITH key AS (SELECT 1 WHERE $3::integer IS NULL UNION ALL SELECT 1 FROM api_keys WHERE id = $3 AND revoked_at IS NULL),
        batch AS (SELECT nextval('ingest_claim_ids') AS claim_id WHERE EXISTS (SELECT 1 FROM key)),
        claimed AS (
            INSERT INTO ingested_events AS e (event_id, account_id, received_at, produced, claim_id)
            SELECT t.event_id, t.account_id, $4, false, batch.claim_id
            FROM unnest($1::varchar[], $2::varchar[]) AS t(event_id, account_id), batch
            ON CONFLICT (event_id) DO UPDATE
            SET account_id = EXCLUDED.account_id, received_at = EXCLUDED.received_at, produced = false, claim_id = EXCLUDED.claim_id,
                taken_over_from = CASE WHEN e.received_at >= $5 THEN e.received_at END
            WHERE e.received_at < $5 OR (e.received_at < $6 AND NOT {_ROW_PRODUCED})
            RETURNING e.event_id, e.taken_over_from
        )
        SELECT EXISTS (SELECT 1 FROM key) AS key_ok, (SELECT claim_id FROM batch) AS claim_id,
            ARRAY(SELECT event_id FROM claimed) AS claimed,
            ARRAY(SELECT event_id FROM claimed WHERE taken_over_from IS NOT NULL) AS taken_over,
            ARRAY(SELECT taken_over_from FROM claimed WHERE taken_over_from IS NOT NULL) AS taken_over_from
    """
    _PRODUCED_PG = (
        f"SELECT e.event_id FROM ingested_events AS e WHERE e.event_id = ANY($1::varchar[]) AND e.received_at >= $2 AND {_ROW_PRODUCED}"
    )
    _MARK_PG = (
        "INSERT INTO ingest_produced_claims (claim_id, received_at) SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) "
        "ON CONFLICT (claim_id) DO NOTHING"
    )
    _RELEASE_PG = f"DELETE FROM ingested_events AS e WHERE e.event_id = ANY($1::varchar[]) AND e.claim_id = $2 AND NOT {_ROW_PRODUCED}"

    def __init__(self, engine: AsyncEngine, window: timedelta, lease: timedelta, timeout_s: float = 10.0) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._pool: asyncpg.Pool | None = None
        self.window = window
        self.lease = lease
        self._timeout_s = timeout_s
        self._marks: list[tuple[Claim, asyncio.Future[None]]] = []
        self._marking: asyncio.Task[None] | None = None
        self._late_marks: set[asyncio.Task[None]] = set()  # marks that failed, retried until the database is back

    async def start(self) -> None:
        """The pool connects lazily (min_size 0): a database that is down at start answers 503 per request."""
        if self._postgres and self._pool is None:
            url = self._engine.url.set(drivername="postgresql")
            self._pool = await asyncpg.create_pool(
                url.render_as_string(hide_password=False),
                min_size=0,
                max_size=10,
                timeout=self._timeout_s,
                command_timeout=self._timeout_s,
                reset=_nothing_to_reset,
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _pg(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection within the timeout; a database that does not answer becomes a retryable 503."""
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        try:
            async with asyncio.timeout(self._timeout_s), self._pool.acquire() as connection:
                yield connection
        except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError) as exc:
            # InternalClientError: the server went away mid-statement ("cannot switch to state 12"), seen when
            # PostgreSQL is stopped under load; whether the statement ran is unknown, which a claim's lease covers
            raise BrokerUnavailable(f"the database did not answer: {type(exc).__name__}") from exc
        except (asyncpg.OperatorInterventionError, asyncpg.TransactionRollbackError) as exc:
            raise BrokerUnavailable(f"the database refused for now: {type(exc).__name__}") from exc

    async def claim(self, items: Sequence[tuple[str, str]], key_id: int | None = None, now: datetime | None = None) -> Claim:
        """(event id, account id) pairs, ids distinct. Raises KeyRevoked when `key_id` is no longer valid."""
        now = now or utcnow()
        window_start, lease_start = now - self.window, now - self.lease
        ordered = sorted(items)  # rows are locked in one order by every process: no deadlock between two claims
        requested = [event_id for event_id, _ in items]
        if self._postgres:
            ids = [event_id for event_id, _ in ordered]
            async with self._pg() as connection:
                row = await connection.fetchrow(
                    self._CLAIM_PG, ids, [account for _, account in ordered], key_id, now, window_start, lease_start
                )
                if not row["key_ok"]:
                    raise KeyRevoked(key_id)
                claim_id, taken = row["claim_id"], set(row["claimed"])
                taken_over = dict(zip(row["taken_over"], row["taken_over_from"], strict=True))
                rest = [event_id for event_id in ids if event_id not in taken]
                produced = [r[0] for r in await connection.fetch(self._PRODUCED_PG, rest, window_start)] if rest else []
        else:
            claim_id = None
            taken, taken_over, produced = await self._claim_portable(ordered, key_id, now, window_start, lease_start)
        claimed, duplicates, busy = claim_outcome(requested, taken, produced)
        return Claim(claimed, duplicates, busy, now, claim_id, taken_over)

    async def _claim_portable(
        self, ordered: list[tuple[str, str]], key_id: int | None, now: datetime, window_start: datetime, lease_start: datetime
    ) -> tuple[set[str], dict[str, datetime], list[str]]:
        """SQLite: the same conditional upsert, a chunk at a time, in one transaction (rolled back if the key is gone)."""
        taken: set[str] = set()
        taken_over: dict[str, datetime] = {}
        async with self._engine.begin() as connection:
            for start in range(0, len(ordered), 300):
                rows = [{"event_id": i, "account_id": a, "received_at": now, "produced": False} for i, a in ordered[start : start + 300]]
                insert = sqlite.insert(IngestedEvent).values(rows)
                upsert = insert.on_conflict_do_update(
                    index_elements=["event_id"],
                    set_={
                        "account_id": insert.excluded.account_id,
                        "received_at": now,
                        "produced": False,
                        "taken_over_from": case((IngestedEvent.received_at >= window_start, IngestedEvent.received_at), else_=None),
                    },
                    where=(IngestedEvent.received_at < window_start)
                    | (~IngestedEvent.produced & (IngestedEvent.received_at < lease_start)),
                ).returning(IngestedEvent.event_id, IngestedEvent.taken_over_from)
                for event_id, previous in await connection.execute(upsert):
                    taken.add(event_id)
                    if previous is not None:
                        taken_over[event_id] = previous
            if key_id is not None:
                valid = await connection.scalar(select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))
                if valid is None:
                    await connection.rollback()
                    raise KeyRevoked(key_id)
            rest = [event_id for event_id, _ in ordered if event_id not in taken]
            produced: list[str] = []
            for start in range(0, len(rest), 500):
                query = select(IngestedEvent.event_id).where(
                    IngestedEvent.event_id.in_(rest[start : start + 500]), IngestedEvent.produced, IngestedEvent.received_at >= window_start
                )
                produced.extend((await connection.execute(query)).scalars())
        return taken, taken_over, produced

    async def mark_produced(self, claim: Claim) -> None:
        """After Kafka's ack: from now on a replay is a duplicate. On PostgreSQL the marks of requests finishing
        together go in one statement (a group commit): each request still waits for its own claim to be marked."""
        if not claim.claimed:
            return
        if not self._postgres:
            await self._settle_portable(claim, produced=True)
            return
        done = asyncio.get_running_loop().create_future()
        self._marks.append((claim, done))
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_pending(), name="ingest-dedupe-marks")
        await asyncio.shield(done)

    async def _mark_pending(self) -> None:
        """Marks whatever is waiting, one statement per round, until nothing is."""
        while self._marks:
            marks, self._marks = self._marks, []
            claim_ids = [claim.claim_id for claim, _ in marks]
            stamps = [claim.stamp for claim, _ in marks]
            try:
                async with self._pg() as connection:
                    await connection.execute(self._MARK_PG, claim_ids, stamps)
            except Exception as exc:  # every waiting request fails alike (503, or 500 for a bug)
                for _, done in marks:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in marks:
                if not done.done():
                    done.set_result(None)

    async def release(self, claim: Claim) -> None:
        """The produce failed (or was not attempted): the ids are free for the retry at once."""
        if not claim.claimed:
            return
        if not self._postgres:
            await self._settle_portable(claim, produced=False)
            return
        async with self._pg() as connection:
            await connection.execute(self._RELEASE_PG, claim.claimed, claim.claim_id)

    async def _settle_portable(self, claim: Claim, produced: bool) -> None:
        """SQLite: mark or release each row still holding the claim (its `received_at`)."""
        async with self._engine.begin() as connection:
            for start in range(0, len(claim.claimed), 500):
                mine = (
                    IngestedEvent.event_id.in_(claim.claimed[start : start + 500]),
                    IngestedEvent.received_at == claim.stamp,
                    ~IngestedEvent.produced,
                )
                if produced:
                    await connection.execute(update(IngestedEvent).where(*mine).values(produced=True))
                else:
                    await connection.execute(delete(IngestedEvent).where(*mine))

    @asynccontextmanager
    async def holding(self, items: Sequence[tuple[str, str]], key_id: int | None = None) -> AsyncIterator[Claim]:
        """Claim, let the caller produce the claimed ids, then mark them; any failure releases them (best effort:
        if the release fails too, the lease frees them). Ids another request holds make this a 503 at once."""
        claim = await self.claim(items, key_id)
        if claim.busy:
            await self._release_quietly(claim)
            raise BrokerUnavailable(f"{len(claim.busy)} of these ids are being accepted by another request right now")
        try:
            yield claim
        except OutcomeUnknown:
            raise  # the records may yet land: the lease decides
        except PartlyDelivered as exc:
            # first the ids Kafka refused, free for the retry; only then the mark, which makes the rest duplicates.
            # If the release fails, nothing is marked: the lease frees every id (a repeat rather than a loss)
            undelivered = set(exc.undelivered)
            await self.release(replace(claim, claimed=[i for i in claim.claimed if i in undelivered]))
            await self.mark_produced(claim)
            raise
        except BaseException:
            await self._release_quietly(claim)
            raise
        try:
            await self.mark_produced(claim)
        except Exception:
            # Kafka has the events: the answer is a success (a 503 would have the client produce them again once
            # the lease ran out, too late for signals to drop the repeat); the mark follows when the database is back
            log.warning("marking %d produced ids failed; retrying in the background", len(claim.claimed), exc_info=True)
            task = asyncio.create_task(self._mark_when_back(claim), name="ingest-dedupe-late-mark")
            self._late_marks.add(task)
            task.add_done_callback(self._late_marks.discard)

    async def _mark_when_back(self, claim: Claim, first_delay_s: float = 1.0, give_up_after_s: float = 600.0) -> None:
        """Retries a failed mark with backoff; until it lands, a replay of these ids waits for the lease, and the claim
        that then takes them over finds them on Kafka (ProducedLookup) instead of producing them again."""
        delay, deadline = first_delay_s, asyncio.get_running_loop().time() + give_up_after_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(delay)
            try:
                await self.mark_produced(claim)
                return
            except Exception:
                delay = min(delay * 2, 30.0)
        log.error("gave up marking %d produced ids after %.0f s", len(claim.claimed), give_up_after_s)

    async def _release_quietly(self, claim: Claim) -> None:
        try:
            await asyncio.shield(self.release(claim))
        except Exception:
            log.warning("releasing %d claimed ids failed; they are free again after %s", len(claim.claimed), self.lease, exc_info=True)

    async def prune(self, now: datetime | None = None, chunk: int = 10_000) -> int:
        """Drop ids and claim marks past the window (a row past it is claimable whatever its mark says), a chunk
        at a time so no transaction holds a table long. Returns how many ids were dropped."""
        cutoff = (now or utcnow()) - self.window
        removed = await self._prune_rows(IngestedEvent.event_id, IngestedEvent.received_at < cutoff, chunk)
        await self._prune_rows(IngestProducedClaim.claim_id, IngestProducedClaim.received_at < cutoff, chunk)
        return removed

    async def _prune_rows(self, key: Any, past_window: Any, chunk: int) -> int:
        removed = 0
        while True:
            async with self._engine.begin() as connection:
                doomed = select(key).where(past_window).limit(chunk).scalar_subquery()
                result = await connection.execute(delete(key.table).where(key.in_(doomed)))
            count = affected_rows(result)
            removed += count
            if count < chunk:
                return removed
