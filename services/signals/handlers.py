"""The signals service layer: decode records, apply them to cached account state, decide what to write.

Kept free of Faust so it is unit-tested directly; the Faust agent only moves bytes, offsets and state.
The rule that keeps it exactly-once in effect: a batch's signals are delivered before any state that
records them is written, and an event is acknowledged (so its offset may be committed) only after the
state it changed has been written.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from services.config import RadarConfig
from services.signals.domain import AccountState, Rules, apply_account_update, apply_event, empty_state, encode_state, load_state
from shared.event_records import partition_of
from shared.schemas import EVENT_ADAPTER, AccountUpdate, Signal
from shared.wire import WireEvent, decode_event, decode_events, from_model

log = logging.getLogger(__name__)

# hands signals to the producer and returns their deliveries, which the worker awaits before writing state
Publish = Callable[[list[Signal]], Awaitable[list[Awaitable[Any]]]]


def rules_from_config(config: RadarConfig) -> Rules:
    signals = config.signals
    return Rules(
        thresholds=tuple(signals.usage_thresholds),
        recent_event_ids=signals.recent_event_ids_per_account,
        seat_metric=signals.seat_metric,
        seat_thresholds=tuple(signals.seat_thresholds),
        sustained_utilization=signals.sustained_utilization,
        sustained_periods=signals.sustained_periods,
        premium_feature_tries=signals.premium_feature_tries,
        premium_feature_window=timedelta(days=signals.premium_feature_window_days),
        growth_rate=signals.growth_rate,
        growth_min_previous_week=signals.growth_min_previous_week,
    )


@dataclass(frozen=True)
class Record:
    """One input record as the agent saw it: where it came from, and its raw bytes."""

    is_account_update: bool
    key: bytes | None
    value: bytes | None
    partition: int
    where: str
    partitions: int = 1
    source: str = ""
    offset: int = -1


def _misplaced(record: Record, items: list[AccountUpdate | WireEvent], grouped: bool) -> set[str]:
    """The accounts that do not belong to the record: a single-event record is keyed by its account; a grouped
    one may carry any account of its partition (decided once per account, as a record repeats them)."""
    if grouped:
        return {account for account in {item.account_id for item in items} if partition_of(account, record.partitions) != record.partition}
    return {item.account_id for item in items if record.key is not None and record.key != item.account_id.encode()}


def decode(record: Record) -> tuple[list[AccountUpdate | WireEvent], list[str]]:
    """The record's contents and what could not be read, each problem naming the record (and index). Events are
    msgspec Structs (shared.wire), account updates Pydantic models: only events are many.

    An event record holds one event (a JSON object) or several (a JSON array of events whose accounts hash to
    the record's partition, as ingest writes them: shared.event_records), which cuts the per-record cost.
    """
    if record.value is None:
        return [], [f"{record.where}: empty record (tombstone) ignored"]
    items: list[AccountUpdate | WireEvent] = []
    problems: list[str] = []
    grouped = not record.is_account_update and record.value.lstrip()[:1] == b"["
    try:
        if record.is_account_update:
            items.append(AccountUpdate.model_validate_json(record.value))
        elif grouped:
            items.extend(decode_events(record.value))
        else:
            items.append(decode_event(record.value))
    except ValidationError as exc:
        kind = "account update" if record.is_account_update else "event"
        problems.append(f"{record.where}: unreadable {kind}: {str(exc)[:300]}")
        items = _readable_items(record) if grouped else []
    misplaced = _misplaced(record, items, grouped)
    if not misplaced:
        return items, problems
    where = f"partition {record.partition}" if grouped else f"key {record.key!r}"
    for item in items:
        if item.account_id in misplaced:
            problems.append(f"{record.where}: account {item.account_id!r} does not belong to this record's {where}")
    return [item for item in items if item.account_id not in misplaced], problems


def _readable_items(record: Record) -> list[AccountUpdate | WireEvent]:
    """From an array with bad events, the good ones still count (the error names the bad ones)."""
    try:
        raw = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(raw, list):
        return []
    good: list[AccountUpdate | WireEvent] = []
    for item in raw:
        try:
            good.append(from_model(EVENT_ADAPTER.validate_python(item)))
        except ValidationError:
            continue
    return good


@dataclass
class BatchResult:
    processed: int = 0
    processed_accounts: int = 0
    rejected: list[str] = field(default_factory=list)
    rejected_accounts: int = 0
    replayed: int = 0
    replayed_accounts: int = 0
    signals: list[Signal] = field(default_factory=list)


@dataclass
class AccountStates:
    """Account state between the table and the rules: parsed once, kept while owned, written when dirty.

    `load` reads the table's stored JSON from the partition the account's records come from; `dirty` maps each
    changed account to that partition, so the write lands in its changelog however the batch mixed partitions.
    """

    load: Callable[[str, int], bytes | None]
    max_cached: int = 50_000
    cache: dict[str, AccountState] = field(default_factory=dict)
    dirty: dict[str, int] = field(default_factory=dict)

    def get(self, account_id: str, partition: int) -> AccountState:
        state = self.cache.get(account_id)
        if state is None:
            stored = self.load(account_id, partition)
            state = load_state(stored) if stored else empty_state(account_id)
            self.cache[account_id] = state
        return state

    def changes(self) -> Iterable[tuple[str, bytes, int]]:
        """The writes owed, then forgets them (and the cache, when it has grown past its bound)."""
        for account_id, partition in self.dirty.items():
            yield account_id, encode_state(self.cache[account_id]), partition
        self.dirty.clear()
        if len(self.cache) > self.max_cached:
            self.cache.clear()

    def forget(self) -> None:
        """On a rebalance: another worker may change what this one had cached."""
        self.cache.clear()
        self.dirty.clear()


def apply_batch(records: Iterable[Record], states: AccountStates, rules: Rules) -> BatchResult:
    """Applies each record's items to their accounts' states, skipping what a state already holds: after a crash,
    Kafka redelivers from the last committed offset, which may be far behind the last state written; the offset kept
    with the state makes that replay exact whatever its length (an id window would not: it forgets)."""
    result = BatchResult()
    signals, dirty, cached = result.signals, states.dirty, states.cache
    for record in records:
        items, problems = decode(record)
        is_update, source, offset, partition, applied = record.is_account_update, record.source, record.offset, record.partition, 0
        if problems:
            result.rejected += problems
            if is_update:
                result.rejected_accounts += len(problems)
        # decided once per account and record: a grouped record carries several events of one account
        replayed: dict[str, bool] = {}
        for item in items:
            account_id = item.account_id
            state = cached.get(account_id) or states.get(account_id, partition)
            skip = replayed.get(account_id)
            if skip is None:
                offsets = state.source_offsets
                skip = replayed[account_id] = offset >= 0 and offsets.get(source, -1) >= offset
                if not skip and offset >= 0:
                    offsets[source] = offset
            if skip:
                result.replayed += 1
                result.replayed_accounts += is_update
                continue
            if is_update:
                emitted = apply_account_update(state, item, rules)  # type: ignore[arg-type]
                result.processed_accounts += 1
            else:
                emitted = apply_event(state, item, rules)  # type: ignore[arg-type]
            if emitted:
                signals += emitted
            dirty[account_id] = partition
            applied += 1
        result.processed += applied
    return result
