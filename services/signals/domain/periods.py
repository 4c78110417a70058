"""Billing periods and ISO weeks, by event time (UTC), named by their first day: the calendar every rule reads.

Every event asks, so the day-level answers are cached."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache


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
def calendar_of(day: date, anchor_day: int) -> tuple[str, str, str]:
    """The day's billing period, its week and the week before, as labels: one cached lookup for the fast path."""
    week = _week_of_day(day)
    return _period_of_day(day, anchor_day).label, week, previous_week(week)
