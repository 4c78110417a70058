"""Closed billing periods: rolling over into a new one, and correcting a closed one's figure with a late event."""

from __future__ import annotations

from services.signals.domain.config import Rules
from services.signals.domain.periods import Period
from services.signals.domain.state import AccountState, MetricUsage, PeriodUsage
from shared.wire import GaugeEvent, UsageEvent


def roll_period(state: AccountState, period: Period, rules: Rules) -> bool:
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


def record_closed(state: AccountState, label: str, metric: str, event: UsageEvent | GaugeEvent) -> None:
    """A late event: its closed period's figure is corrected (sustained-high reads it), nothing fires."""
    period = state.history.get(label)
    if period is None:
        return  # older than the history kept
    closed = period.setdefault(metric, PeriodUsage(used=0.0, limit=state.limits.get(metric)))
    closed.used = closed.used + event.quantity if isinstance(event, UsageEvent) else max(closed.used, event.value)
