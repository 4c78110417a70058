"""The dedupe claim's rules: which ids of a request are new, which a claim took, and which rows may be claimed again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.schemas import Event


@dataclass(frozen=True)
class Claim:
    """What one request holds: `claimed` ids are its to produce; `duplicates` were produced within the window;
    `busy` ids are claimed by another request that has not finished (or died less than a lease ago)."""

    claimed: list[str]
    duplicates: set[str]
    busy: set[str]
    stamp: datetime  # the claim's `received_at`
    claim_id: int | None = None  # PostgreSQL: written on every row claimed; mark and release touch only rows still holding it
    # claimed ids taken over from an unmarked claim whose lease ran out -> that claim's time: its process may have
    # died between Kafka's ack and the mark, so they may be on Kafka already
    taken_over: dict[str, datetime] = field(default_factory=dict)


def claim_outcome(requested: Sequence[str], claimed: Iterable[str], produced: Iterable[str]) -> tuple[list[str], set[str], set[str]]:
    """Split a request's distinct ids into (claimed, duplicates, busy), given what the claim statement took and
    which of the rest a later read found produced within the window; anything else is held by someone else."""
    taken = set(claimed)
    done = set(produced) - taken
    return [i for i in requested if i in taken], done, {i for i in requested if i not in taken and i not in done}


def claimable(produced: bool, received_at: datetime, window_start: datetime, lease_start: datetime) -> bool:
    """Whether an existing row may be claimed again: produced before the window, or an unmarked claim older than
    the lease (`produced`: the row's own flag, or on PostgreSQL its claim's mark). The SQL of
    adapters/dedupe_store.py says the same; this is its reference for tests."""
    return received_at < window_start or (not produced and received_at < lease_start)


def fresh_positions(ids: Sequence[str], already_seen: set[str]) -> list[int]:
    """Positions of ids neither accepted before nor repeated earlier in the request."""
    seen = set(already_seen)
    positions: list[int] = []
    for position, event_id in enumerate(ids):
        if event_id in seen:
            continue
        seen.add(event_id)
        positions.append(position)
    return positions


def split_new(events: list[Event], already_seen: set[str]) -> tuple[list[Event], int]:
    """Drop events whose id was accepted before or repeats earlier in this batch."""
    fresh = [events[position] for position in fresh_positions([event.id for event in events], already_seen)]
    return fresh, len(events) - len(fresh)
