"""`radar report`: the revenue and signal reports over the command's database, shown as rich tables and written as
one CSV (long format: period, section, group, signal_type, tier, metric, value — one figure a row, easy to pivot)."""

from __future__ import annotations

import csv
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.adapters.transactions import units_of_work
from services.scoring.outcomes import reports
from services.scoring.outcomes.adapters.repository import OutcomesRepository
from services.scoring.outcomes.domain.config import OutcomesConfig
from services.scoring.outcomes.domain.metrics import RevenueMetrics
from services.scoring.outcomes.domain.periods import ReportPeriod
from services.scoring.outcomes.reports import RevenueReport, Scope, SignalReport


async def run(
    sessions: async_sessionmaker[AsyncSession], period: ReportPeriod, config: OutcomesConfig, scope: Scope, summary: bool = False
) -> tuple[RevenueReport, SignalReport, str | None]:
    """The period's revenue and signal reports, and (`summary`) this week's summary text for Slack."""
    outcomes = units_of_work(sessions, OutcomesRepository)
    revenue = await reports.revenue_report(outcomes, period, config, scope)
    signals = await reports.signal_report(outcomes, period, config, scope)
    return revenue, signals, await reports.weekly_summary(outcomes, config) if summary else None


LINES: list[tuple[str, str, str]] = [
    # (metric, label, format)
    ("accounts_at_start", "Accounts at start", "int"),
    ("starting_arr", "Starting ARR", "money"),
    ("expansion", "+ Expansion", "money"),
    ("contraction", "− Contraction", "money"),
    ("churn", "− Churn", "money"),
    ("ending_cohort_arr", "= Cohort ARR at end", "money"),
    ("nrr", "NRR", "pct"),
    ("grr", "GRR", "pct"),
    ("new", "New logos booked", "money"),
    ("new_logo_expansion", "New logos' own expansion", "money"),
    ("expansion_revenue", "Expansion revenue", "money"),
    ("expansion_revenue_share", "Expansion share of booked", "pct"),
    ("accounts_expanded", "Accounts expanded", "int"),
    ("expansion_rate", "Expansion rate", "pct"),
    ("expansion_revenue_per_customer", "Expansion per customer", "money"),
    ("opportunities_identified", "Opportunities identified", "int"),
    ("opportunities_won", "Won", "int"),
    ("opportunities_lost", "Lost", "int"),
    ("opportunities_open", "Still open", "int"),
    ("win_rate", "Win rate", "pct"),
    ("average_deal_size", "Average deal size", "money"),
    ("average_cycle_days", "Sales cycle (days)", "days"),
    ("time_to_first_expansion_days", "Time to first expansion (days)", "days"),
]


def _fmt(value: float | int | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "money":
        return f"${value:,.0f}"
    if kind == "days":
        return f"{value:.1f}"
    return f"{value:,}"


def render(console: Console, revenue: RevenueReport, signals: SignalReport) -> None:
    scope = ", ".join(f"{k} {v}" for k, v in (("segment", revenue.scope.segment), ("owner", revenue.scope.owner)) if v)
    title = f"Expansion outcomes — {revenue.period.label}" + (f" ({scope})" if scope else "")
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("all", justify="right")
    for name in revenue.groups:
        table.add_column(name, justify="right")
    columns: list[RevenueMetrics] = [revenue.metrics, *revenue.groups.values()]
    for metric, label, kind in LINES:
        table.add_row(label, *(_fmt(getattr(m, metric), kind) for m in columns))
    console.print(table)

    precision = Table(
        title=f"Signal precision — expanded within {signals.window_days:g} days of the first alert; "
        f"base rate: the {signals.population} accounts' never-alerted share",
        title_justify="left",
    )
    for column in ("signal", "tier", "alerted", "expanded", "precision", "base rate", "lift"):
        precision.add_column(column, justify="left" if column in ("signal", "tier") else "right")
    for row in signals.rows:
        precision.add_row(
            "all signals" if row.signal_type == "*" else row.signal_type,
            "all tiers" if row.tier == "*" else row.tier,
            str(row.alerted),
            str(row.expanded),
            _fmt(row.precision, "pct"),
            _fmt(row.base_rate, "pct"),
            "—" if row.lift is None else f"{row.lift:.2f}×",
        )
    console.print(precision)


def write_csv(path: Path, revenue: RevenueReport, signals: SignalReport) -> int:
    """Returns the number of rows written (header excluded)."""
    rows: list[list[object]] = []
    label = revenue.period.label
    groups = {"all": revenue.metrics, **revenue.groups}
    for group, metrics in groups.items():
        for metric, _, _ in LINES:
            rows.append([label, "revenue", group, "", "", metric, _csv(getattr(metrics, metric))])
    for row in signals.rows:
        for metric in ("alerted", "expanded", "precision", "base_rate", "lift"):
            rows.append([label, "signals", "all", row.signal_type, row.tier, metric, _csv(getattr(row, metric))])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["period", "section", "group", "signal_type", "tier", "metric", "value"])
        writer.writerows(rows)
    return len(rows)


def _csv(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)
