"""What an expansion is worth: the next plan's price difference or what is over the limits, from the plan catalog."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.scoring.domain.state import AccountView, UsageSnapshot
from shared.schemas import PlanUpsert


@dataclass(frozen=True)
class ExpansionEstimate:
    amount: float | None  # None: the account's plan is not in the catalog
    basis: str
    options: int | None  # plans above the current one


def _plans_above(plan_id: str, catalog: Mapping[str, PlanUpsert]) -> int:
    seen = {plan_id}
    current = catalog[plan_id].next_plan
    while current is not None and current in catalog and current not in seen:
        seen.add(current)
        current = catalog[current].next_plan
    return len(seen) - 1


def estimate_expansion(account: AccountView, usage: Mapping[str, UsageSnapshot], catalog: Mapping[str, PlanUpsert]) -> ExpansionEstimate:
    """The larger of moving to the next plan (price difference) and paying for what is over the limits
    (units over each limit × the plan's price per unit, seats included); plan prices are ARR."""
    plan_id = account.plan
    if not plan_id:
        return ExpansionEstimate(None, "no plan on record", None)
    plan = catalog.get(plan_id)
    if plan is None:
        return ExpansionEstimate(None, f"plan {plan_id!r} is not in the catalog", None)
    upgrade = 0.0
    upgrade_basis = ""
    following = catalog.get(plan.next_plan) if plan.next_plan else None
    if following is not None and following.price > plan.price:
        upgrade = following.price - plan.price
        upgrade_basis = f"upgrade {plan_id} → {plan.next_plan} (+{upgrade:,.0f})"
    overage = 0.0
    overage_parts = []
    for metric, snapshot in sorted(usage.items()):
        limit = account.limits.get(metric) or plan.limits.get(metric) or snapshot.limit
        over = snapshot.value - limit
        if over <= 0 or limit <= 0:
            continue
        unit_price = plan.price / (plan.limits.get(metric) or limit)
        overage += over * unit_price
        overage_parts.append(f"{over:g} {metric} over the limit × {unit_price:,.2f}")
    if upgrade == 0 and overage == 0:
        return ExpansionEstimate(0.0, "nothing over the limits and no higher plan", _plans_above(plan_id, catalog))
    if upgrade >= overage:
        return ExpansionEstimate(round(upgrade, 2), upgrade_basis, _plans_above(plan_id, catalog))
    return ExpansionEstimate(round(overage, 2), "; ".join(overage_parts), _plans_above(plan_id, catalog))
