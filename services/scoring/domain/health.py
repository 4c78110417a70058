"""An account's health (0-100) from satisfaction, support trend, billing issues and usage trend: known parts only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.scoring.domain.config import HealthConfig
from services.scoring.domain.state import AccountState


@dataclass(frozen=True)
class Health:
    score: float | None  # None: no health data yet (unknown is not at risk)
    billing_issue_open: bool
    parts: dict[str, float]
    support_trend: Literal["decreasing", "stable", "increasing"] | None
    recent_contraction: bool = False  # a downgrade or churn within the trend window


def _trend(times: list[datetime], as_of: datetime, window: timedelta, tolerance: float) -> Literal["decreasing", "stable", "increasing"]:
    recent = sum(1 for t in times if as_of - window < t <= as_of)
    previous = sum(1 for t in times if as_of - 2 * window < t <= as_of - window)
    if previous == 0:
        return "increasing" if recent > 0 else "stable"
    ratio = recent / previous
    if ratio > 1 + tolerance:
        return "increasing"
    if ratio < 1 - tolerance:
        return "decreasing"
    return "stable"


def health_of(state: AccountState, config: HealthConfig) -> Health:
    """0-100 from satisfaction, support trend, billing issues and usage trend; known parts only."""
    as_of = state.as_of
    window = timedelta(days=config.trend_window_days)
    parts: dict[str, float] = {}
    satisfaction = []
    if state.nps is not None:
        satisfaction.append(state.nps / 10)
    if state.csat:
        satisfaction.append((sum(state.csat) / len(state.csat) - 1) / 4)
    if satisfaction:
        parts["satisfaction"] = sum(satisfaction) / len(satisfaction)
    support_trend = None
    if state.ticket_times and as_of is not None:
        support_trend = _trend(state.ticket_times, as_of, window, config.trend_tolerance)
        parts["support_trend"] = {"decreasing": 1.0, "stable": 0.7, "increasing": 0.3}[support_trend]
    billing_open = state.billing_issue_open_since is not None and (
        as_of is None or as_of - state.billing_issue_open_since < timedelta(days=config.billing_issue_open_days)
    )
    if state.billing_seen:
        parts["billing"] = 0.0 if billing_open else 1.0
    recent_contraction = as_of is not None and any(as_of - window < t <= as_of for t in state.downgrade_times)
    if not parts:
        return Health(None, False, {}, None, recent_contraction)
    if as_of is not None and (state.usage_signal_times or state.downgrade_times):
        if any(as_of - window < t <= as_of for t in state.downgrade_times):
            parts["usage_trend"] = 0.2
        elif any(as_of - window < t <= as_of for t in state.usage_signal_times):
            parts["usage_trend"] = 1.0
        else:
            parts["usage_trend"] = 0.5
    weights = config.weights.model_dump()
    known = sum(weights[name] for name in parts)
    score = round(100 * sum(weights[name] * value for name, value in parts.items()) / known, 1) if known else None
    return Health(score, billing_open, parts, support_trend, recent_contraction)
