"""A period's revenue metrics (per segment or owner) and signal precision, from the ledger formulas in `revenue.py`.

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

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from services.scoring.outcomes.domain.revenue import (
    ArrChange,
    Opportunity,
    arr_at,
    ledger,
    pipeline_metrics,
    signal_precision,
    time_to_first_expansion_days,
)

ALL = "*"


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
