"""Outcomes, pure: opportunity stages, report periods, segments, and the revenue and signal reports
assembled from the ledger formulas in `revenue.py`. No I/O.

Definitions (stated once, used by the API, `radar report` and the weekly summary alike):
- expanded = a `subscription_changed` with arr_after > arr_before > 0 (a first purchase or a comeback
  after churn is new business, not expansion);
- an account's segment for a period is the band its ARR at the start of the period falls in (an account
  that starts paying during the period: its first ARR in it); its owner is its CSM, else its AE;
- win rate, deal size and cycle are over the opportunities identified in the period;
- signal precision: of the accounts with an expansion alert of that signal type (and tier) in the period,
  the share that expanded within `precision_window_days` of their first such alert; base rate: the share of
  the period's accounts with no expansion alert at all in the period that expanded during the period;
  lift = precision / base rate.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services.scoring.revenue import (
    ArrChange,
    Opportunity,
    arr_at,
    ledger,
    pipeline_metrics,
    signal_precision,
    time_to_first_expansion_days,
)

ALL = "*"

# ----------------------------------------------------------------------------- opportunity stages


class Stage(StrEnum):
    IDENTIFIED = "identified"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    WON = "won"
    LOST = "lost"


OPEN_STAGES = (Stage.IDENTIFIED, Stage.QUALIFIED, Stage.PROPOSAL)
CLOSED_STAGES = (Stage.WON, Stage.LOST)


class StageError(ValueError):
    """A stage change that cannot happen; the message says why."""


def check_stage_change(current: Stage, target: Stage, reason: str | None) -> None:
    """Open stages move freely among themselves (deals go back as well as forward); won and lost are final."""
    if current in CLOSED_STAGES:
        raise StageError(f"stage: the opportunity is already {current.value}; a closed opportunity does not reopen")
    if target == current:
        raise StageError(f"stage: the opportunity is already at {current.value}")
    if target == Stage.LOST and not (reason and reason.strip()):
        raise StageError("reason: say why the opportunity was lost")


def outcome_of(stage: str) -> str:
    return stage if stage in CLOSED_STAGES else "open"


def automatic_close(arr_before: float, arr_after: float) -> tuple[Stage, float, str] | None:
    """What a subscription change does to the account's open opportunity: an upgrade wins it (amount =
    the ARR delta), a churn loses it; anything else leaves it open."""
    if 0 < arr_before < arr_after:
        return Stage.WON, arr_after - arr_before, "upgrade"
    if arr_after <= 0 < arr_before:
        return Stage.LOST, 0.0, "churned"
    return None


# ----------------------------------------------------------------------------- periods


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


# ----------------------------------------------------------------------------- accounts in a period


def segment_for(arr: float, segments: Mapping[str, float]) -> str:
    """The segment with the highest lower bound the ARR reaches."""
    reached = [(floor, name) for name, floor in segments.items() if arr >= floor]
    return max(reached)[1] if reached else min((floor, name) for name, floor in segments.items())[1]


def period_arr(changes: Iterable[ArrChange], start: datetime, end: datetime, declared: Mapping[str, float]) -> dict[str, float]:
    """Each account's ARR for segmenting the period: at its start, else its first ARR in it, else the declared ARR."""
    ordered = sorted(changes, key=lambda c: c.at)
    arr = {account: value for account, value in arr_at(ordered, start).items() if value > 0}
    for change in ordered:
        if start <= change.at < end and change.arr_after > 0:
            arr.setdefault(change.account_id, change.arr_after)
    for account, value in declared.items():
        arr.setdefault(account, value)
    return arr


def active_accounts(changes: Iterable[ArrChange], start: datetime, end: datetime) -> set[str]:
    """Accounts paying at the start of the period or at any point during it."""
    ordered = sorted(changes, key=lambda c: c.at)
    active = {account for account, value in arr_at(ordered, start).items() if value > 0}
    active.update(c.account_id for c in ordered if start <= c.at < end and c.arr_after > 0)
    return active


# ----------------------------------------------------------------------------- the revenue report


@dataclass(frozen=True)
class RevenueMetrics:
    accounts_at_start: int
    starting_arr: float
    expansion: float
    contraction: float
    churn: float
    ending_cohort_arr: float
    new: float
    new_logo_expansion: float
    nrr: float | None
    grr: float | None
    expansion_revenue: float
    expansion_revenue_share: float | None
    accounts_expanded: int
    expansion_rate: float | None
    expansion_revenue_per_customer: float | None
    opportunities_identified: int
    opportunities_won: int
    opportunities_lost: int
    opportunities_open: int
    win_rate: float | None
    average_deal_size: float | None
    average_cycle_days: float | None
    time_to_first_expansion_days: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def revenue_metrics(changes: Iterable[ArrChange], opportunities: Iterable[Opportunity], start: datetime, end: datetime) -> RevenueMetrics:
    """`changes`: the whole ledger of the accounts in scope (history decides the opening ARR);
    `opportunities`: theirs, any time (those identified in the period count)."""
    history = list(changes)
    book = ledger(history, start, end)
    pipeline = pipeline_metrics(o for o in opportunities if start <= o.identified_at < end)
    return RevenueMetrics(
        accounts_at_start=book.accounts_at_start,
        starting_arr=book.starting_arr,
        expansion=book.expansion,
        contraction=book.contraction,
        churn=book.churn,
        ending_cohort_arr=book.ending_cohort_arr,
        new=book.new,
        new_logo_expansion=book.new_logo_expansion,
        nrr=book.nrr,
        grr=book.grr,
        expansion_revenue=book.expansion + book.new_logo_expansion,
        expansion_revenue_share=book.expansion_revenue_rate,
        accounts_expanded=book.accounts_expanded,
        expansion_rate=book.expansion_rate,
        expansion_revenue_per_customer=book.expansion_revenue_per_customer,
        opportunities_identified=pipeline.identified,
        opportunities_won=pipeline.won,
        opportunities_lost=pipeline.lost,
        opportunities_open=pipeline.identified - pipeline.won - pipeline.lost,
        win_rate=pipeline.win_rate,
        average_deal_size=pipeline.average_deal_size,
        average_cycle_days=pipeline.average_cycle_days,
        time_to_first_expansion_days=time_to_first_expansion_days(history, start, end),
    )


def grouped_revenue_metrics(
    changes: Iterable[ArrChange],
    opportunities: Iterable[Opportunity],
    groups: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> dict[str, RevenueMetrics]:
    """Metrics per group (segment or owner); `groups` maps account -> group, accounts not in it are left out."""
    changes_by: dict[str, list[ArrChange]] = defaultdict(list)
    opportunities_by: dict[str, list[Opportunity]] = defaultdict(list)
    for change in changes:
        if change.account_id in groups:
            changes_by[groups[change.account_id]].append(change)
    for opportunity in opportunities:
        if opportunity.account_id in groups:
            opportunities_by[groups[opportunity.account_id]].append(opportunity)
    names = sorted(set(groups.values()))
    return {name: revenue_metrics(changes_by[name], opportunities_by[name], start, end) for name in names}


# ----------------------------------------------------------------------------- signal precision


@dataclass(frozen=True)
class AlertFact:
    account_id: str
    signal_type: str
    tier: str
    at: datetime


@dataclass(frozen=True)
class SignalMetrics:
    signal_type: str
    tier: str
    alerted: int
    expanded: int
    precision: float | None
    base_rate: float | None
    lift: float | None

    def as_dict(self) -> dict[str, str | int | float | None]:
        return asdict(self)


def expansions_of(changes: Iterable[ArrChange]) -> list[tuple[str, datetime]]:
    """Upgrades of a paying account; a first purchase or a comeback after churn is not an expansion."""
    return [(c.account_id, c.at) for c in changes if 0 < c.arr_before < c.arr_after]


def signal_metrics(
    alerts: Iterable[AlertFact],
    changes: Iterable[ArrChange],
    population: Iterable[str],
    start: datetime,
    end: datetime,
    window_days: float,
) -> list[SignalMetrics]:
    """Per signal type and tier, per signal type (tier `*`), per tier (type `*`) and overall (`*`/`*`)."""
    in_period = [a for a in alerts if start <= a.at < end]
    keyed = []
    for alert in in_period:
        for signal_type, tier in ((alert.signal_type, alert.tier), (alert.signal_type, ALL), (ALL, alert.tier), (ALL, ALL)):
            keyed.append((f"{signal_type}|{tier}", alert.account_id, alert.at))
    expansions = expansions_of(changes)
    base = [(account, at) for account, at in expansions if start <= at < end]
    rows = signal_precision(keyed, expansions, population, window_days, base_expansions=base)
    if not rows:
        # no alert at all: still say what the base rate was
        everyone = signal_precision([(f"{ALL}|{ALL}", "", start)], [], population, window_days, base_expansions=base)
        return [SignalMetrics(ALL, ALL, 0, 0, None, everyone[0].base_rate, None)]
    result = []
    for row in rows:
        signal_type, tier = row.key.split("|", 1)
        result.append(SignalMetrics(signal_type, tier, row.alerted, row.expanded, row.precision, row.base_rate, row.lift))
    # the most precise first; the overall and per-type summaries after their details
    return sorted(result, key=lambda r: (r.signal_type == ALL, r.signal_type, r.tier == ALL, r.tier))


# ----------------------------------------------------------------------------- the weekly summary


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.0f}"


@dataclass(frozen=True)
class PipelineSnapshot:
    open_by_stage: dict[str, int]
    open_expected_amount: float
    won_count: int
    won_amount: float
    lost_count: int


def summary_text(
    as_of: datetime,
    snapshot: PipelineSnapshot,
    quarter: RevenueMetrics,
    quarter_label: str,
    nrr_trend: list[tuple[str, float | None]],
    best_signals: list[SignalMetrics],
) -> str:
    """The owner's expansion dashboard in a Slack message (mrkdwn)."""
    open_total = sum(snapshot.open_by_stage.values())
    stages = ", ".join(f"{snapshot.open_by_stage.get(stage, 0)} {stage}" for stage in OPEN_STAGES)
    lines = [
        f"*Expansion summary* — week to {as_of.date().isoformat()}",
        f"• Active opportunities: *{open_total}* ({stages}), {_money(snapshot.open_expected_amount)} estimated",
        f"• Closed this week: *{snapshot.won_count} won* for {_money(snapshot.won_amount)}, {snapshot.lost_count} lost",
        f"• {quarter_label} to date: NRR {_pct(quarter.nrr)}, GRR {_pct(quarter.grr)}, expansion {_money(quarter.expansion_revenue)}"
        f" ({_pct(quarter.expansion_revenue_share)} of booked), win rate {_pct(quarter.win_rate)}",
        "• NRR trend: " + " → ".join(f"{label} {_pct(value)}" for label, value in nrr_trend),
    ]
    ranked = [s for s in best_signals if s.signal_type != ALL and s.tier == ALL and s.alerted]
    if ranked:
        ranked.sort(key=lambda s: (-(s.precision or 0), -s.alerted))
        lines.append(
            "• Most precise signals: "
            + "; ".join(f"{s.signal_type} {_pct(s.precision)} ({s.expanded}/{s.alerted}, lift {_lift(s.lift)})" for s in ranked[:3])
        )
    return "\n".join(lines)


def _lift(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}×"
