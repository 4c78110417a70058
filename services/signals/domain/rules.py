"""One detector per signal type (shared/signal_types.py), registered against it: adding a type is its enum member
and SignalKind, its detector here, and its thresholds in domain/config.py.

Two shapes of detector:
- `@detects(SignalType.X, EventKind, ...)`: run on each event of the kinds named, before the event's own bookkeeping
  (domain/apply.py), as `(state, event, current, rules) -> Signal | None`; it keeps whatever state it alone needs
  (weeks, teams, tries). `current` is False for an event of a closed period: it updates what the detector keeps,
  and fires nothing.
- `@detects_level(SignalType.X)`: run on a metric's level once an event or an account update moved it, and only at
  `Rules.lowest_trigger` of its limit or above, as `(state, metric, rules, event_id, event_time) -> Signal | None`.
One event's signals come out event detectors first, then level detectors, each in their order below. Signal ids are derived from what
was crossed, so an event processed twice emits the same id, which every stage downstream drops.

A detector that reads usage events turns the quiet-usage fast path off (domain/fast_path.py) until that learns
when the detector stays quiet: correct, and slower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from services.signals.domain.config import Rules
from services.signals.domain.email_domains import matching_account_domain
from services.signals.domain.periods import previous_period, previous_week, week_of
from services.signals.domain.state import AccountState, PeriodUsage, team_key
from shared.schemas import AccountUpdate, Signal, utcnow
from shared.signal_types import SignalType
from shared.wire import FeatureUsedEvent, GaugeEvent, UsageEvent, UserAddedEvent, user_model

Kind = TypeVar("Kind")
DetectorOf = Callable[[AccountState, Kind, bool, Rules], Signal | None]  # an event detector of one event kind
EventDetector = DetectorOf[Any]
LevelDetector = Callable[[AccountState, str, Rules, str, datetime], Signal | None]


@dataclass(frozen=True)
class Detector:
    signal_type: SignalType
    reads: tuple[type, ...]  # the event kinds (and account updates) it is run on
    on_event: EventDetector | None = None
    on_level: LevelDetector | None = None


DETECTORS: dict[SignalType, Detector] = {}
# what moves a metric's level, and so what a level detector is run on
LEVEL_MOVERS: tuple[type, ...] = (UsageEvent, GaugeEvent, UserAddedEvent, AccountUpdate)


def register(detector: Detector) -> None:
    if detector.signal_type in DETECTORS:
        raise ValueError(f"{detector.signal_type} has a detector already: {DETECTORS[detector.signal_type]}")
    DETECTORS[detector.signal_type] = detector


def detects(signal_type: SignalType, *reads: type[Kind]) -> Callable[[DetectorOf[Kind]], DetectorOf[Kind]]:
    def add(detect: DetectorOf[Kind]) -> DetectorOf[Kind]:
        register(Detector(signal_type, reads, on_event=detect))
        return detect

    return add


def detects_level(signal_type: SignalType) -> Callable[[LevelDetector], LevelDetector]:
    def add(detect: LevelDetector) -> LevelDetector:
        register(Detector(signal_type, LEVEL_MOVERS, on_level=detect))
        return detect

    return add


def event_detectors(kind: type) -> tuple[EventDetector, ...]:
    return tuple(d.on_event for d in DETECTORS.values() if d.on_event is not None and kind in d.reads)


def level_detectors() -> tuple[LevelDetector, ...]:
    return tuple(d.on_level for d in DETECTORS.values() if d.on_level is not None)


def signal(state: AccountState, kind: SignalType, key: str, event_id: str, event_time: datetime, **fields: object) -> Signal:
    return Signal(
        signal_id=f"{state.account_id}:{kind}:{key}",
        type=kind,
        account_id=state.account_id,
        event_id=event_id,
        event_timestamp=event_time,
        emitted_at=utcnow(),
        **fields,
    )


def _crossing(
    state: AccountState, metric: str, thresholds: tuple[float, ...], kind: SignalType, event_id: str, event_time: datetime
) -> Signal | None:
    """One signal for the highest threshold newly reached; every lower one reached with it is spent too."""
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None:
        return None
    utilization = usage.used / limit
    reached = [t for t in thresholds if utilization >= t and t not in usage.fired]
    if not reached:
        return None
    usage.fired = sorted({*usage.fired, *reached})
    highest = max(reached)
    generation = f":g{usage.arm_generation}" if usage.arm_generation else ""
    return signal(
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


@detects_level(SignalType.USAGE_THRESHOLD_CROSSED)
def usage_threshold_crossed(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> Signal | None:
    if metric == rules.seat_metric:
        return None
    return _crossing(state, metric, rules.thresholds, SignalType.USAGE_THRESHOLD_CROSSED, event_id, event_time)


@detects_level(SignalType.SEAT_THRESHOLD_CROSSED)
def seat_threshold_crossed(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> Signal | None:
    if metric != rules.seat_metric:
        return None
    return _crossing(state, metric, rules.seat_thresholds, SignalType.SEAT_THRESHOLD_CROSSED, event_id, event_time)


def sustained_before(state: AccountState, metric: str, limit: float, rules: Rules) -> list[PeriodUsage] | None:
    """The closed periods just before this one, latest first, when each was at or above the sustained share
    (history included); None when one was not."""
    label, closed_periods = state.period, []
    for _ in range(rules.sustained_periods - 1):
        label = previous_period(label, state.billing_anchor)
        closed = state.history.get(label, {}).get(metric)
        closed_limit = (closed.limit or limit) if closed else None
        if closed is None or closed_limit is None or closed.used / closed_limit < rules.sustained_utilization:
            return None
        closed_periods.append(closed)
    return closed_periods


@detects_level(SignalType.USAGE_SUSTAINED_HIGH)
def usage_sustained_high(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> Signal | None:
    """At or above the sustained share now and in each of the periods just before (history included)."""
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None or usage.sustained_fired or state.period is None:
        return None
    if usage.used / limit < rules.sustained_utilization:
        return None
    before = sustained_before(state, metric, limit, rules)
    if before is None:
        return None
    usage.sustained_fired = True
    return signal(
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


@detects(SignalType.USAGE_GROWTH, UsageEvent)
def usage_growth(state: AccountState, event: UsageEvent, current: bool, rules: Rules) -> Signal | None:
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
    current_week, previous = weeks[week], weeks.get(previous_week(week), 0.0)
    fired_key = f"{event.metric}@{week}"
    if previous < rules.growth_min_previous_week or previous <= 0 or fired_key in state.growth_fired:
        return None
    growth = current_week / previous - 1
    if growth <= rules.growth_rate:
        return None
    state.growth_fired = [key for key in state.growth_fired if key.rsplit("@", 1)[1] >= previous_week(week)] + [fired_key]
    if not current:
        return None  # spent all the same: the period's own events do not fire it again
    return signal(
        state,
        SignalType.USAGE_GROWTH,
        f"{event.metric}:{week}",
        event.id,
        event.timestamp,
        metric=event.metric,
        value=current_week,
        previous_value=previous,
        growth=round(growth, 4),
        threshold=rules.growth_rate,
        period=week,
    )


@detects(SignalType.NEW_TEAM_ADOPTION, UserAddedEvent)
def new_team_adoption(state: AccountState, event: UserAddedEvent, current: bool, rules: Rules) -> Signal | None:
    user = event.user
    team = team_key(user.team)
    if not team or team in state.teams:
        return None
    first = not state.teams  # the first team is where the account started, not an adoption by a new one
    state.teams.append(team)
    if first or not current:
        return None
    return signal(state, SignalType.NEW_TEAM_ADOPTION, team, event.id, event.timestamp, team=user.team, user=user_model(user))


@detects(SignalType.NEW_DOMAIN_USER, UserAddedEvent)
def new_domain_user(state: AccountState, event: UserAddedEvent, current: bool, rules: Rules) -> Signal | None:
    user = event.user
    user_domain = user.domain
    if matching_account_domain(user_domain, state.domains) is None or user_domain in state.seen_domains:
        return None
    state.seen_domains.append(user_domain)
    if not current:
        return None
    return signal(state, SignalType.NEW_DOMAIN_USER, user_domain, event.id, event.timestamp, user=user_model(user), domain=user_domain)


@detects(SignalType.PREMIUM_FEATURE_INTEREST, FeatureUsedEvent)
def premium_feature_interest(state: AccountState, event: FeatureUsedEvent, current: bool, rules: Rules) -> Signal | None:
    """M tries of a gated feature within any window of N days, once per feature and period."""
    if not event.gated:
        return None
    window, needed = rules.premium_feature_window, rules.premium_feature_tries
    tries = sorted([*state.feature_tries.get(event.feature, []), event.timestamp])
    tries = [at for at in tries if at >= tries[-1] - window][-4 * needed :]
    state.feature_tries[event.feature] = tries
    # the most tries any window of M days around this one holds (tries may arrive out of order)
    in_window = max(sum(1 for at in tries if start <= at <= start + window) for start in tries if start <= event.timestamp)
    if not current or event.feature in state.features_fired or in_window < needed:
        return None
    state.features_fired.append(event.feature)
    return signal(
        state,
        SignalType.PREMIUM_FEATURE_INTEREST,
        f"{event.feature}:{state.period}",
        event.id,
        event.timestamp,
        feature=event.feature,
        tries=in_window,
        period=state.period,
    )
