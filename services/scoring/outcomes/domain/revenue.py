"""Revenue outcomes, pure: the ledger of ARR movements and the seeds' expansion metrics over it.

Formulas (seeds, "Key expansion metrics"):
- NRR = (starting ARR + expansion − contraction − churn) / starting ARR
- GRR = (starting ARR − churn − contraction) / starting ARR
- expansion revenue rate = all expansion / all ARR booked in the period (new logos + every expansion)
- expansion rate = accounts that expanded / accounts at the start
- expansion win rate = opportunities won / opportunities identified
- average expansion deal size = won amount / deals won; sales cycle = mean days identified → won
- time to first expansion = mean days from an account's first purchase to its first expansion
- expansion revenue per customer = expansion / accounts at the start

NRR and GRR are cohort measures: only accounts paying at the start of the period count. An account won
during the period books `new`; its own later upgrades in the period are `new_logo_expansion`, which counts
in the expansion revenue rate but not in NRR.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import mean
from typing import Literal

Movement = Literal["new", "expansion", "contraction", "churn", "flat"]


@dataclass(frozen=True)
class ArrChange:
    """One `subscription_changed` event."""

    account_id: str
    at: datetime
    arr_before: float
    arr_after: float


def classify(change: ArrChange) -> Movement:
    if change.arr_before <= 0 < change.arr_after:
        return "new"
    if change.arr_after <= 0 < change.arr_before:
        return "churn"
    if change.arr_after > change.arr_before:
        return "expansion"
    if change.arr_after < change.arr_before:
        return "contraction"
    return "flat"


@dataclass(frozen=True)
class Ledger:
    starting_arr: float
    new: float
    new_logo_expansion: float
    expansion: float
    contraction: float
    churn: float
    accounts_at_start: int
    accounts_expanded: int

    @property
    def ending_cohort_arr(self) -> float:
        return self.starting_arr + self.expansion - self.contraction - self.churn

    @property
    def nrr(self) -> float | None:
        return self.ending_cohort_arr / self.starting_arr if self.starting_arr else None

    @property
    def grr(self) -> float | None:
        return (self.starting_arr - self.churn - self.contraction) / self.starting_arr if self.starting_arr else None

    @property
    def expansion_revenue_rate(self) -> float | None:
        expanded = self.expansion + self.new_logo_expansion
        booked = self.new + expanded
        return expanded / booked if booked else None

    @property
    def expansion_rate(self) -> float | None:
        return self.accounts_expanded / self.accounts_at_start if self.accounts_at_start else None

    @property
    def expansion_revenue_per_customer(self) -> float | None:
        return self.expansion / self.accounts_at_start if self.accounts_at_start else None


def arr_at(changes: Iterable[ArrChange], moment: datetime) -> dict[str, float]:
    """Each account's ARR just before `moment`, from its changes in time order."""
    arr: dict[str, float] = {}
    for change in sorted(changes, key=lambda c: c.at):
        if change.at >= moment:
            break
        arr[change.account_id] = change.arr_after
    return arr


def ledger(changes: Iterable[ArrChange], start: datetime, end: datetime) -> Ledger:
    """ARR movements in [start, end); a churned account that comes back within the period re-expands."""
    ordered = sorted(changes, key=lambda c: c.at)
    opening = {account: value for account, value in arr_at(ordered, start).items() if value > 0}
    new = new_logo_expansion = expansion = contraction = churn = 0.0
    expanded: set[str] = set()
    for change in ordered:
        if not start <= change.at < end:
            continue
        delta = change.arr_after - change.arr_before
        if change.account_id not in opening:
            movement = classify(change)
            if movement == "new":
                new += delta
            elif movement == "expansion":
                new_logo_expansion += delta
            continue
        movement = classify(change)
        if movement in ("expansion", "new"):
            expansion += delta
            expanded.add(change.account_id)
        elif movement == "contraction":
            contraction -= delta
        elif movement == "churn":
            churn += change.arr_before
    return Ledger(sum(opening.values()), new, new_logo_expansion, expansion, contraction, churn, len(opening), len(expanded))


@dataclass(frozen=True)
class Opportunity:
    account_id: str
    identified_at: datetime
    outcome: Literal["open", "won", "lost"]
    closed_at: datetime | None = None
    amount: float = 0.0


@dataclass(frozen=True)
class PipelineMetrics:
    identified: int
    won: int
    lost: int
    win_rate: float | None
    average_deal_size: float | None
    average_cycle_days: float | None


def pipeline_metrics(opportunities: Iterable[Opportunity]) -> PipelineMetrics:
    items = list(opportunities)
    won = [o for o in items if o.outcome == "won"]
    lost = [o for o in items if o.outcome == "lost"]
    cycles = [(o.closed_at - o.identified_at).total_seconds() / 86400 for o in won if o.closed_at]
    return PipelineMetrics(
        identified=len(items),
        won=len(won),
        lost=len(lost),
        win_rate=len(won) / len(items) if items else None,
        average_deal_size=mean(o.amount for o in won) if won else None,
        average_cycle_days=mean(cycles) if cycles else None,
    )


def time_to_first_expansion_days(changes: Iterable[ArrChange], start: datetime | None = None, end: datetime | None = None) -> float | None:
    """Mean days from each account's first purchase to its first expansion, over accounts that expanded
    (with `start`/`end`: those whose first expansion falls in [start, end))."""
    first_purchase: dict[str, datetime] = {}
    first_expansion: dict[str, datetime] = {}
    for change in sorted(changes, key=lambda c: c.at):
        movement = classify(change)
        if movement == "new":
            first_purchase.setdefault(change.account_id, change.at)
        elif movement == "expansion" and change.account_id in first_purchase:
            first_expansion.setdefault(change.account_id, change.at)
    days = [
        (first_expansion[a] - first_purchase[a]).total_seconds() / 86400
        for a in first_expansion
        if (start is None or first_expansion[a] >= start) and (end is None or first_expansion[a] < end)
    ]
    return mean(days) if days else None


@dataclass(frozen=True)
class SignalPrecision:
    key: str
    alerted: int
    expanded: int
    precision: float | None
    base_rate: float | None
    lift: float | None


def signal_precision(
    alerts: Iterable[tuple[str, str, datetime]],
    expansions: Iterable[tuple[str, datetime]],
    population: Iterable[str],
    window_days: float,
    base_expansions: Iterable[tuple[str, datetime]] | None = None,
) -> list[SignalPrecision]:
    """For each key (signal type or tier): of the accounts alerted, the share that expanded within
    `window_days` of their first such alert; against the base rate of accounts never alerted at all.

    `alerts` are (key, account, at); `expansions` (account, at); `population` every account considered;
    `base_expansions` (default: `expansions`) are the ones that count for the never-alerted base rate.
    """
    first_alert: dict[str, dict[str, datetime]] = defaultdict(dict)
    alerted_any: set[str] = set()
    for key, account, at in alerts:
        current = first_alert[key].get(account)
        if current is None or at < current:
            first_alert[key][account] = at
        alerted_any.add(account)
    expansion_times: dict[str, list[datetime]] = defaultdict(list)
    for account, at in expansions:
        expansion_times[account].append(at)

    base_expanded = {a for a, _ in base_expansions} if base_expansions is not None else set(expansion_times)
    never_alerted = [a for a in set(population) if a not in alerted_any]
    base_rate = sum(1 for a in never_alerted if a in base_expanded) / len(never_alerted) if never_alerted else None
    window_s = window_days * 86400
    results = []
    for key in sorted(first_alert):
        accounts = first_alert[key]
        hits = sum(
            1
            for account, at in accounts.items()
            if any(0 <= (t - at).total_seconds() <= window_s for t in expansion_times.get(account, []))
        )
        precision = hits / len(accounts) if accounts else None
        lift = precision / base_rate if precision is not None and base_rate else None
        results.append(SignalPrecision(key, len(accounts), hits, precision, base_rate, lift))
    return results
