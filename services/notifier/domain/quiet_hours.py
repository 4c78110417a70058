"""Per-channel quiet windows: when a delivery that falls inside one may go."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.notifier.domain.config import QuietHours


def quiet_until(now: datetime, window: QuietHours) -> datetime | None:
    """When the quiet window `now` falls in ends (UTC), or None outside it."""
    zone = ZoneInfo(window.timezone)
    local = now.astimezone(zone)
    start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
    if start == end:
        return None
    at = local.time().replace(tzinfo=None)
    inside = start <= at < end if start < end else (at >= start or at < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if start > end and at >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
