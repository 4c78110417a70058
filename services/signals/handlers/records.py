"""A batch of input records applied to cached account state: decode each record, apply its items, collect the
signals, and note which accounts changed.

Kept free of Faust so it is unit-tested directly; the worker (handlers/worker.py) only moves bytes, offsets and
state. The rule that keeps it exactly-once in effect: a batch's signals are delivered before any state that
records them is written, and an event is acknowledged (so its offset may be committed) only after the state it
changed has been written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

import orjson
from pydantic import ValidationError

from services.signals.domain.apply import apply_account_update, apply_event
from services.signals.domain.config import Rules
from services.signals.domain.state import AccountState, empty_state, encode_state, load_state
from shared.event_records import partition_of
from shared.schemas import EVENT_ADAPTER, AccountUpdate, Signal
from shared.wire import WireEvent, decode_event, decode_events, from_model


class RecordKind(Enum):
    EVENTS = "events"  # one usage event, or several of one partition's accounts (shared.event_records)
    ACCOUNT_UPDATE = "account_update"


@dataclass(frozen=True)
class Record:
    """One input record as the agent saw it: where it came from, and its raw bytes."""

    kind: RecordKind
    key: bytes | None
    value: bytes | None
    partition: int
    where: str
    partitions: int = 1
    source: str = ""
    offset: int = -1


class OfAccount(Protocol):
    @property
    def account_id(self) -> str: ...


Item = TypeVar("Item", bound=OfAccount)


def _placed(record: Record, items: list[Item], problems: list[str], grouped: bool) -> tuple[list[Item], list[str]]:
    """Drops the accounts that do not belong to the record: a single-item record is keyed by its account; a grouped
    one may carry any account of its partition (decided once per account, as a record repeats them)."""
    if grouped:
        accounts = {item.account_id for item in items}
        misplaced = {account for account in accounts if partition_of(account, record.partitions) != record.partition}
    else:
        misplaced = {item.account_id for item in items if record.key is not None and record.key != item.account_id.encode()}
    if not misplaced:
        return items, problems
    where = f"partition {record.partition}" if grouped else f"key {record.key!r}"
    for item in items:
        if item.account_id in misplaced:
            problems.append(f"{record.where}: account {item.account_id!r} does not belong to this record's {where}")
    return [item for item in items if item.account_id not in misplaced], problems


def decode_account_update(record: Record) -> tuple[list[AccountUpdate], list[str]]:
    """The record's account update (a Pydantic model), or what could not be read, naming the record."""
    if record.value is None:
        return [], [f"{record.where}: empty record (tombstone) ignored"]
    try:
        update = AccountUpdate.model_validate_json(record.value)
    except ValidationError as exc:
        return [], [f"{record.where}: unreadable account update: {str(exc)[:300]}"]
    return _placed(record, [update], [], grouped=False)


def decode_event_record(record: Record) -> tuple[list[WireEvent], list[str]]:
    """The record's events (msgspec Structs, shared.wire) and what could not be read, each problem naming the record
    (and index). A record holds one event (a JSON object) or several (a JSON array of events whose accounts hash to
    the record's partition, as ingest writes them: shared.event_records), which cuts the per-record cost."""
    if record.value is None:
        return [], [f"{record.where}: empty record (tombstone) ignored"]
    grouped = record.value.lstrip()[:1] == b"["
    problems: list[str] = []
    try:
        items = decode_events(record.value) if grouped else [decode_event(record.value)]
    except ValidationError as exc:
        problems.append(f"{record.where}: unreadable event: {str(exc)[:300]}")
        items = _readable_events(record) if grouped else []
    return _placed(record, items, problems, grouped)


def _readable_events(record: Record) -> list[WireEvent]:
    """From an array with bad events, the good ones still count (the error names the bad ones)."""
    try:
        raw = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(raw, list):
        return []
    good: list[WireEvent] = []
    for item in raw:
        try:
            good.append(from_model(EVENT_ADAPTER.validate_python(item)))
        except ValidationError:
            continue
    return good


@dataclass(frozen=True)
class RecordHandler(Generic[Item]):
    decode: Callable[[Record], tuple[list[Item], list[str]]]
    apply: Callable[[AccountState, Item, Rules], list[Signal]]
    per_account: bool  # each item is one account's record: counted apart in the metrics


HANDLERS: dict[RecordKind, RecordHandler[Any]] = {
    RecordKind.EVENTS: RecordHandler(decode_event_record, apply_event, per_account=False),
    RecordKind.ACCOUNT_UPDATE: RecordHandler(decode_account_update, apply_account_update, per_account=True),
}


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
        handler = HANDLERS[record.kind]
        items, problems = handler.decode(record)
        apply, per_account = handler.apply, handler.per_account
        source, offset, partition, applied = record.source, record.offset, record.partition, 0
        if problems:
            result.rejected += problems
            if per_account:
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
                result.replayed_accounts += per_account
                continue
            emitted = apply(state, item, rules)
            if emitted:
                signals += emitted
            dirty[account_id] = partition
            applied += 1
        result.processed += applied
        if per_account:
            result.processed_accounts += applied
    return result
