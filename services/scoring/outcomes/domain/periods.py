"""Report periods: a year (2026), a quarter (2026-Q3), a month (2026-11) or a custom span, in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ReportPeriod:
    label: str
    start: datetime
    end: datetime


class PeriodError(ValueError):
    pass


_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _month_start(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def parse_period(text: str) -> ReportPeriod:
    """`2026` (a year), `2026-Q3` (a quarter) or `2026-11` (a month), in UTC."""
    value = text.strip()
    if match := _YEAR.match(value):
        year = int(match[1])
        return ReportPeriod(value, _month_start(year, 1), _month_start(year + 1, 1))
    if match := _QUARTER.match(value):
        year, quarter = int(match[1]), int(match[2])
        return ReportPeriod(f"{year}-Q{quarter}", _month_start(year, 3 * quarter - 2), _month_start(year, 3 * quarter + 1))
    if match := _MONTH.match(value):
        year, month = int(match[1]), int(match[2])
        return ReportPeriod(value, _month_start(year, month), _month_start(year, month + 1))
    raise PeriodError(f"period: {text!r} is not a period; use a year (2026), a quarter (2026-Q3) or a month (2026-11)")


def custom_period(start: datetime, end: datetime) -> ReportPeriod:
    if end <= start:
        raise PeriodError("end: must be after start")
    return ReportPeriod(f"{start.date().isoformat()}..{end.date().isoformat()}", start, end)


def quarter_of(moment: datetime) -> ReportPeriod:
    return parse_period(f"{moment.year}-Q{(moment.month - 1) // 3 + 1}")


def quarters_up_to(moment: datetime, count: int) -> list[ReportPeriod]:
    """The `count` quarters ending with the one `moment` is in, oldest first (the last one to date)."""
    current = quarter_of(moment)
    quarters = [current]
    while len(quarters) < count:
        previous = quarters[0].start - timedelta(days=1)
        quarters.insert(0, quarter_of(previous))
    return quarters
