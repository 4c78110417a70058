"""The common case in one step: a usage event of the current period, in a week already counted, that fires nothing.

Most events are that one; the full rules (domain/apply.py) cost several times as much. tests/unit/signals/test_fast_path.py
holds the two to the same states and signals."""

from __future__ import annotations

from services.signals.domain.config import Rules
from services.signals.domain.dedupe import id_hash
from services.signals.domain.periods import calendar_of
from services.signals.domain.rules import sustained_before
from services.signals.domain.state import AccountState
from shared.signal_types import SignalType
from shared.wire import UsageEvent

# the detectors run on usage events whose silence `quiet_usage` checks: with another one, the fast path is off
KNOWS = frozenset(
    {
        SignalType.USAGE_GROWTH,
        SignalType.USAGE_THRESHOLD_CROSSED,
        SignalType.SEAT_THRESHOLD_CROSSED,
        SignalType.USAGE_SUSTAINED_HIGH,
    }
)


def quiet_usage(state: AccountState, event: UsageEvent, rules: Rules) -> bool:
    """True when it applied the event exactly as the full rules would; False, having changed nothing, when anything
    could fire or roll over: the full rules decide."""
    hashed, recent = id_hash(event.id), state.recent_event_ids
    if hashed in recent.seen:
        return True  # a duplicate, ignored
    anchor = state.billing_anchor
    # a decoded event is at offset zero (shared.wire): its date is the UTC day, with no conversion to ask for
    period, week, last_week = calendar_of(event.timestamp.date(), anchor.day if anchor else 1)
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
            if sustained_before(state, metric, limit, rules) is not None:
                return False
    recent.add(hashed, rules.recent_event_ids)  # remember's membership test is done above
    weeks[week] = current
    usage.used = used
    return True
