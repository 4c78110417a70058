"""An alert from a scored signal: its top drivers, what changed since the previous score, its route and gate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.facts import Facts
from services.scoring.domain.routing import gate, route
from services.scoring.domain.scorecard import ScoreCard
from services.scoring.domain.state import AccountState
from shared.schemas import Alert, Driver, Signal, UsageLine


def top_drivers(card: ScoreCard, count: int = 3) -> list[Driver]:
    known = [f for f in card.factors if f.fraction is not None]
    known.sort(key=lambda f: f.points, reverse=True)
    return [Driver(factor=f.factor, points=round(f.points, 2), detail=f.detail) for f in known[:count]]


def changes_since(previous: Mapping[str, object] | None, card: ScoreCard) -> list[str]:
    """Plain sentences comparing this score's breakdown with the one stored before it."""
    if not previous:
        return ["first score for this account"]
    changes = []
    before = previous.get("score")
    if isinstance(before, int) and before != card.score:
        changes.append(f"score {before} → {card.score} ({card.score - before:+d})")
    if previous.get("tier") != card.tier.value:
        changes.append(f"tier {previous.get('tier')} → {card.tier.value}")
    stored = previous.get("factors")
    old_factors = {f["factor"]: f for f in stored if isinstance(f, dict)} if isinstance(stored, list) else {}
    for factor in card.factors:
        old = old_factors.get(factor.factor)
        old_points = old.get("points") if old else None
        new_points = None if factor.fraction is None else round(factor.points, 2)
        if old_points is None and new_points is not None:
            changes.append(f"{factor.factor} now known: {factor.detail}")
        elif old_points is not None and new_points is None:
            changes.append(f"{factor.factor} no longer known")
        elif old_points is not None and new_points is not None and abs(new_points - old_points) >= 0.01:
            changes.append(f"{factor.factor} {new_points - old_points:+.1f} ({factor.detail})")
    return changes or ["no change in the score"]


def build_alert(
    signal: Signal,
    facts: Facts,
    card: ScoreCard,
    state: AccountState,
    previous_breakdown: Mapping[str, object] | None,
    config: ScoringConfig,
    now: datetime,
) -> Alert:
    reason = gate(facts, config)
    path = route(signal, facts, config, retention=reason is not None)
    account = facts.account
    return Alert(
        alert_id=f"alert:{signal.signal_id}",
        kind="retention_risk" if reason else "expansion",
        account_id=signal.account_id,
        account_name=account.name,
        signal=signal,
        score=card.score,
        tier=card.tier,
        drivers=top_drivers(card),
        changes=changes_since(previous_breakdown, card),
        usage=[UsageLine(metric=m, value=u.value, limit=u.limit, utilization=u.utilization) for m, u in sorted(state.usage.items())],
        motion=path.motion,
        expansion_arr=None if reason else facts.estimate.amount,
        arr=account.arr,
        health=facts.health.score,
        route_to=path.route_to,
        owner=path.owner,
        informed=path.informed,
        slack_channel=account.slack_channel,
        created_at=now,
        expansion_basis=None if reason else facts.estimate.basis,
        reason=reason,
        action=card.action if not reason else "retention: address the account's health before expanding",
    )
