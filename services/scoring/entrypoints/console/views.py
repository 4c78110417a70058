"""The web console's view models: pure functions that turn stored rows into what the templates show.

No I/O here (queries.py reads, routes.py wires); every number a page prints is decided in one of these, so
the unit tests hold the pages to their meaning. Account-supplied text is never marked safe: Jinja2 escapes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.scoring.outcomes.domain.metrics import ALL
from services.scoring.outcomes.domain.stages import Stage
from shared.schemas import Tier
from shared.signal_types import humanize, summary_of

PAGE_SIZE = 50
USAGE_LINES = (0.8, 0.9, 0.95)  # the usage chart's threshold lines, as shares of the limit
SEAT_METRICS = ("seats", "users", "licenses", "licences")

TIER_LABELS = {
    Tier.IMMEDIATE.value: "Immediate",
    Tier.SHORT_TERM.value: "Short term",
    Tier.MEDIUM_TERM.value: "Medium term",
    Tier.LOW.value: "Low",
}
STAGE_ORDER = [stage.value for stage in Stage]


class FilterError(ValueError):
    """A console filter that cannot be applied; the message names the field and what is accepted."""


def money(value: float | None) -> str:
    """Compact currency for tables: 1234 -> $1.2k, 2500000 -> $2.5M."""
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"${value / 1_000_000:.1f}M"
    if magnitude >= 1_000:
        return f"${value / 1_000:.1f}k"
    return f"${value:,.0f}"


def percent(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def moment(value: object) -> datetime:
    """A time from a stored payload: ISO 8601 text (`Z` included, Python 3.11 reads it) or already a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# ----------------------------------------------------------------------------- filters and pages


@dataclass(frozen=True)
class AccountFilters:
    tier: str | None = None
    owner: str | None = None
    segment: str | None = None
    search: str | None = None
    page: int = 1

    def query(self, **override: Any) -> dict[str, str]:
        """The filters as query parameters (for the pager's links), without the empty ones."""
        values = {"tier": self.tier, "owner": self.owner, "segment": self.segment, "q": self.search, "page": self.page, **override}
        return {key: str(value) for key, value in values.items() if value not in (None, "") and not (key == "page" and value == 1)}


def _clean(value: str | None, what: str, limit: int = 200) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit or "\x00" in value:
        raise FilterError(f"{what}: at most {limit} characters, no NUL")
    return value


def parse_filters(params: Mapping[str, str], segments: Mapping[str, float]) -> AccountFilters:
    """The accounts page's query string, checked: unknown tier or segment, a bad page -> FilterError naming it."""
    tier = _clean(params.get("tier"), "tier")
    if tier is not None and tier not in TIER_LABELS:
        raise FilterError(f"tier: {tier!r} is not one of {', '.join(TIER_LABELS)}")
    segment = _clean(params.get("segment"), "segment")
    if segment is not None and segment not in segments:
        raise FilterError(f"segment: {segment!r} is not one of {', '.join(segments)}")
    raw_page = (params.get("page") or "1").strip()
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= 100_000:
        raise FilterError(f"page: {raw_page!r} is not a page number (1 or more)")
    return AccountFilters(tier, _clean(params.get("owner"), "owner"), segment, _clean(params.get("q"), "search"), int(raw_page))


def segment_bounds(segment: str, segments: Mapping[str, float]) -> tuple[float, float | None]:
    """The ARR range [low, high) of a segment (high None for the top one), as outcomes' segment_for assigns them."""
    low = segments[segment]
    higher = [floor for floor in segments.values() if floor > low]
    return low, (min(higher) if higher else None)


def like_pattern(search: str) -> str:
    """A case-insensitive substring pattern with LIKE's own wildcards escaped (escape character `\\`)."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    first: int  # 1-based index of the first row shown (0 when none)
    last: int

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def pager(page: int, total: int, size: int = PAGE_SIZE) -> Pager:
    pages = max(1, math.ceil(total / size))
    first = (page - 1) * size + 1 if total and page <= pages else 0
    return Pager(page, pages, total, first, min(page * size, total) if first else 0)


# ----------------------------------------------------------------------------- scores and drivers


def sparkline(values: Sequence[float], width: int = 96, height: int = 24, low: float = 0, high: float = 100) -> str:
    """SVG polyline points for a score trend (oldest first) on a fixed 0-100 scale, so rows compare; '' when empty."""
    if not values:
        return ""
    if len(values) == 1:
        values = [values[0], values[0]]
    step = width / (len(values) - 1)
    span = (high - low) or 1
    points = []
    for index, value in enumerate(values):
        clamped = min(max(value, low), high)
        points.append(f"{index * step:.1f},{height - 2 - (clamped - low) / span * (height - 4):.1f}")
    return " ".join(points)


def trend_delta(values: Sequence[float]) -> float | None:
    """Latest minus the first of the trend shown; None with fewer than two points."""
    return None if len(values) < 2 else values[-1] - values[0]


@dataclass(frozen=True)
class Driver:
    factor: str
    label: str
    points: float | None
    weight: float | None
    share: float  # of the factor's weight reached, 0-1, for the bar
    detail: str
    parts: list[dict[str, Any]] = field(default_factory=list)


def drivers(breakdown: Mapping[str, Any] | None) -> list[Driver]:
    """The breakdown's factors, strongest first; a factor without data (points None) goes last."""
    rows = []
    for factor in (breakdown or {}).get("factors", []) or []:
        if not isinstance(factor, Mapping):
            continue
        points, weight = factor.get("points"), factor.get("weight")
        share = (points / weight) if isinstance(points, int | float) and isinstance(weight, int | float) and weight > 0 else 0.0
        rows.append(
            Driver(
                factor=str(factor.get("factor", "")),
                label=humanize(str(factor.get("factor", "factor"))),
                points=points,
                weight=weight,
                share=min(max(share, 0.0), 1.0),
                detail=str(factor.get("detail") or ""),
                parts=[dict(part) for part in factor.get("parts", []) or [] if isinstance(part, Mapping)],
            )
        )
    rows.sort(key=lambda d: (d.points is None, -(d.points or 0.0)))
    return rows


def top_driver(breakdown: Mapping[str, Any] | None) -> Driver | None:
    found = [d for d in drivers(breakdown) if d.points]
    return found[0] if found else None


# ----------------------------------------------------------------------------- signals and usage


@dataclass(frozen=True)
class UsageChart:
    metric: str
    value: float
    limit: float
    utilization: float
    times: list[float]  # epoch seconds, oldest first
    values: list[float]
    lines: dict[str, float]  # label -> level (the limit and the 80/90/95 % lines)

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "limit": self.limit, "times": self.times, "values": self.values, "lines": self.lines}


def usage_charts(usage: Mapping[str, Mapping[str, Any]], signals: Iterable[Mapping[str, Any]], now: datetime) -> list[UsageChart]:
    """Per metric: the usage the signals reported over time (oldest first) ending with the current value,
    and the levels to draw across it."""
    history: dict[str, list[tuple[float, float]]] = {}
    for signal in signals:
        metric, value, at = signal.get("metric"), signal.get("value"), signal.get("event_timestamp")
        if isinstance(metric, str) and metric in usage and isinstance(value, int | float) and at:
            history.setdefault(metric, []).append((moment(at).timestamp(), float(value)))
    charts = []
    for metric in sorted(usage):
        current = usage[metric]
        limit = float(current.get("limit") or 0)
        at = current.get("at")
        points = sorted({*history.get(metric, []), (moment(at).timestamp() if at else now.timestamp(), float(current.get("value") or 0))})
        lines = {"limit": limit, **{f"{int(share * 100)}%": round(limit * share, 4) for share in USAGE_LINES}}
        charts.append(
            UsageChart(
                metric=metric,
                value=float(current.get("value") or 0),
                limit=limit,
                utilization=float(current.get("utilization") or 0),
                times=[t for t, _ in points],
                values=[v for _, v in points],
                lines=lines,
            )
        )
    return charts


@dataclass(frozen=True)
class Seats:
    used: float | None  # None: licensed, no seat usage reported yet
    licensed: float
    share: float | None


def seats(usage: Mapping[str, Mapping[str, Any]], limits: Mapping[str, Any] | None = None) -> Seats | None:
    """Seats in use against the licence, from the first seat-like usage metric the account reports; else the
    licence alone when the account declares one."""
    for metric in SEAT_METRICS:
        if metric in usage and usage[metric].get("limit"):
            used, licensed = float(usage[metric].get("value") or 0), float(usage[metric]["limit"])
            return Seats(used, licensed, used / licensed)
    for metric in SEAT_METRICS:
        if isinstance((limit := (limits or {}).get(metric)), int | float) and limit > 0:
            return Seats(None, float(limit), None)
    return None


def event_time(signal: Mapping[str, Any]) -> str:
    """A signal's event time for people: `2026-11-10 12:00 UTC` ('' when it has none)."""
    raw = signal.get("event_timestamp")
    if not raw:
        return ""
    try:
        return moment(raw).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(raw)


# ----------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class AlertRow:
    alert_id: str
    kind: str
    title: str
    score: int
    tier: str
    created_at: datetime
    status: str  # open | done | dismissed
    closed_reason: str | None
    route: str | None  # the notifier's fatigue decision (ping, digest, ...); None before it stored the alert
    deliveries: list[tuple[str, str, int]]  # (channel, status, attempts)
    snoozed_until: datetime | None

    @property
    def delivery_state(self) -> str:
        """One word for the alert's deliveries: not reached the notifier, pending, delivered, failed or mixed."""
        if self.route is None:
            return "not at the notifier yet"
        states = {status for _, status, _ in self.deliveries}
        if not states:
            return f"held ({self.route})"
        if states == {"sent"}:
            return "delivered"
        if "dead" in states:
            return "failed"
        return "pending" if states <= {"pending"} else "partly delivered"

    @property
    def actionable(self) -> bool:
        return self.status == "open" and self.route is not None


def alert_rows(
    alerts: Iterable[Mapping[str, Any]],
    closed: Mapping[str, tuple[str, str | None]],
    routes: Mapping[str, str],
    deliveries: Mapping[str, list[tuple[str, str, int]]],
    snoozed_until: datetime | None,
) -> list[AlertRow]:
    """Alert payloads (newest first) with their state: closed (status, reason), the route, the deliveries."""
    rows = []
    for alert in alerts:
        alert_id = str(alert["alert_id"])
        status, reason = closed.get(alert_id, ("open", None))
        signal = alert.get("signal") or {}
        created = alert.get("created_at")
        rows.append(
            AlertRow(
                alert_id=alert_id,
                kind=str(alert.get("kind", "expansion")),
                title=summary_of(signal) if signal else humanize(str(alert.get("kind", "alert"))),
                score=int(alert.get("score") or 0),
                tier=str(alert.get("tier") or ""),
                created_at=moment(created),
                status=status,
                closed_reason=reason,
                route=routes.get(alert_id),
                deliveries=sorted(deliveries.get(alert_id, [])),
                snoozed_until=snoozed_until,
            )
        )
    return rows


# ----------------------------------------------------------------------------- pipeline and outcomes


@dataclass(frozen=True)
class StageTotal:
    stage: str
    label: str
    count: int
    amount: float  # expected ARR for open stages, booked ARR for won, the lost estimate for lost


def pipeline_totals(rows: Iterable[tuple[str, int, float | None, float | None]]) -> list[StageTotal]:
    """(stage, count, expected, booked) per stage -> every stage in pipeline order, empty ones included."""
    found = {stage: (count, expected or 0.0, booked or 0.0) for stage, count, expected, booked in rows}
    totals = []
    for stage in STAGE_ORDER:
        count, expected, booked = found.get(stage, (0, 0.0, 0.0))
        totals.append(StageTotal(stage, humanize(stage), count, booked if stage == Stage.WON.value else expected))
    return totals


def revenue_series(reports: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Mapping[str, Any]]]], metric: str) -> dict[str, Any]:
    """(period label, overall metrics, metrics per segment) per period -> one chart's data: periods on x,
    one series for all accounts and one per segment (None where the metric is undefined)."""
    segments = sorted({name for _, _, groups in reports for name in groups})
    series = {"All accounts": [report[1].get(metric) for report in reports]}
    for segment in segments:
        series[humanize(segment)] = [groups.get(segment, {}).get(metric) for _, _, groups in reports]
    return {"labels": [label for label, _, _ in reports], "series": series}


def signal_series(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Precision and lift per signal type (all tiers) and per tier (all types), for two bar charts."""
    rows = list(rows)
    by_type = [r for r in rows if r.get("tier") == ALL and r.get("signal_type") != ALL]
    by_tier = [r for r in rows if r.get("signal_type") == ALL and r.get("tier") != ALL]
    by_tier.sort(key=lambda r: list(TIER_LABELS).index(r["tier"]) if r.get("tier") in TIER_LABELS else 99)

    def chart(selected: list[Mapping[str, Any]], label_of: Any) -> dict[str, Any]:
        return {
            "labels": [label_of(r) for r in selected],
            "series": {"Precision": [r.get("precision") for r in selected], "Lift": [r.get("lift") for r in selected]},
            "alerted": [r.get("alerted") for r in selected],
        }

    return {
        "by_type": chart(sorted(by_type, key=lambda r: str(r.get("signal_type"))), lambda r: humanize(str(r["signal_type"]))),
        "by_tier": chart(by_tier, lambda r: TIER_LABELS.get(str(r["tier"]), humanize(str(r["tier"])))),
    }
