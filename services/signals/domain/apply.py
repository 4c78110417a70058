"""One event or account update applied to an account's state: the event's own bookkeeping and the detectors
registered for its kind (domain/rules.py), which return the signals the change triggers.

Event time decides everything: an event lands in the billing period (and week) its timestamp falls in; one for a
period that has closed updates that period's history but never fires a stale signal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from services.signals.domain.config import Rules
from services.signals.domain.dedupe import remember
from services.signals.domain.fast_path import KNOWS, quiet_usage
from services.signals.domain.history import record_closed, roll_period
from services.signals.domain.periods import billing_period
from services.signals.domain.rules import DETECTORS, EventDetector, event_detectors, level_detectors
from services.signals.domain.state import AccountState, MetricUsage, team_key
from shared.schemas import AccountUpdate, Signal
from shared.wire import (
    FeatureUsedEvent,
    GaugeEvent,
    IntegrationConnectedEvent,
    UsageEvent,
    UserAddedEvent,
    UserRemovedEvent,
)
from shared.wire import WireEvent as Event

# what an event changes besides the detectors' own state; returns the metric whose level it moved, if current
Bookkeeping = Callable[[AccountState, Any, bool, str, Rules], str | None]


def _period_usage(state: AccountState, event: UsageEvent | GaugeEvent, current: bool, label: str) -> MetricUsage | None:
    """The current period's usage of the event's metric; None for an event of a closed period, which corrects that
    period's history instead."""
    if not current:
        record_closed(state, label, event.metric, event)
        return None
    usage = state.usage.get(event.metric)
    if usage is None:
        usage = state.usage[event.metric] = MetricUsage()
    return usage


def _count_usage(state: AccountState, event: UsageEvent, current: bool, label: str, rules: Rules) -> str | None:
    usage = _period_usage(state, event, current, label)
    if usage is None:
        return None
    usage.used += event.quantity
    return event.metric


def _set_level(state: AccountState, event: GaugeEvent, current: bool, label: str, rules: Rules) -> str | None:
    usage = _period_usage(state, event, current, label)
    if usage is None:
        return None
    if usage.level_at is not None and event.timestamp < usage.level_at:
        return None  # an older level arriving late does not replace a newer one
    usage.used, usage.level_at = event.value, event.timestamp
    return event.metric


def _count_seats(state: AccountState, rules: Rules) -> None:
    seats = state.usage.setdefault(rules.seat_metric, MetricUsage())
    seats.used = float(len(state.users))


def _add_user(state: AccountState, event: UserAddedEvent, current: bool, label: str, rules: Rules) -> str | None:
    if event.user.id in state.users:
        return None
    state.users[event.user.id] = team_key(event.user.team)
    _count_seats(state, rules)
    return rules.seat_metric if current else None


def _remove_user(state: AccountState, event: UserRemovedEvent, current: bool, label: str, rules: Rules) -> str | None:
    if state.users.pop(event.user.id, "absent") != "absent":
        _count_seats(state, rules)  # fewer seats fire nothing
    return None


def _note_feature(state: AccountState, event: FeatureUsedEvent, current: bool, label: str, rules: Rules) -> str | None:
    if event.feature not in state.features:
        state.features.append(event.feature)
    return None


def _note_integration(state: AccountState, event: IntegrationConnectedEvent, current: bool, label: str, rules: Rules) -> str | None:
    if event.integration not in state.integrations:
        state.integrations.append(event.integration)
    return None


def _nothing(state: AccountState, event: Any, current: bool, label: str, rules: Rules) -> None:
    return None


BOOKKEEPING: dict[type, Bookkeeping] = {
    UsageEvent: _count_usage,
    GaugeEvent: _set_level,
    UserAddedEvent: _add_user,
    UserRemovedEvent: _remove_user,
    FeatureUsedEvent: _note_feature,
    IntegrationConnectedEvent: _note_integration,
}
# per event kind, looked up once per event: its detectors (in their order in rules.py), then its bookkeeping
STEPS: dict[type, tuple[tuple[EventDetector, ...], Bookkeeping]] = {
    kind: (event_detectors(kind), bookkeeping) for kind, bookkeeping in BOOKKEEPING.items()
}
LEVEL_DETECTORS = level_detectors()


def metric_signals(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> list[Signal]:
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None or usage.used / limit < rules.lowest_trigger:
        return []  # the common case, decided at once
    return [s for detect in LEVEL_DETECTORS if (s := detect(state, metric, rules, event_id, event_time)) is not None]


def apply_event_in_full(state: AccountState, event: Event, rules: Rules) -> list[Signal]:
    """Every rule, for any event: what `quiet_usage` must agree with."""
    if not isinstance(event, msgspec.Struct):
        raise TypeError(f"the signals rules take events decoded by shared.wire, not a {type(event).__name__}")
    if not remember(state.recent_event_ids, event.id, rules.recent_event_ids):
        return []
    period = billing_period(event.timestamp, state.billing_anchor)
    current = roll_period(state, period, rules)
    detectors, bookkeeping = STEPS.get(type(event), ((), _nothing))
    signals = [s for detect in detectors if (s := detect(state, event, current, rules)) is not None]
    metric = bookkeeping(state, event, current, period.label, rules)
    if metric is not None:
        signals += metric_signals(state, metric, rules, event.id, event.timestamp)
    return signals


def _quiet_usage_first(state: AccountState, event: Event, rules: Rules) -> list[Signal]:
    if type(event) is UsageEvent and quiet_usage(state, event, rules):
        return []
    return apply_event_in_full(state, event, rules)


def fast_path_holds() -> bool:
    """Whether `quiet_usage` knows every detector that usage events reach."""
    return {detector.signal_type for detector in DETECTORS.values() if UsageEvent in detector.reads} <= KNOWS


# chosen once: the fast path costs nothing more per event, and steps aside for good for a detector it does not know
apply_event: Callable[[AccountState, Event, Rules], list[Signal]] = _quiet_usage_first if fast_path_holds() else apply_event_in_full


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
        signals += metric_signals(state, metric, rules, event_id, update.updated_at)
    return signals
