"""The owner's weekly expansion summary, as a Slack message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.scoring.outcomes.domain.metrics import ALL, RevenueMetrics, SignalMetrics
from services.scoring.outcomes.domain.stages import OPEN_STAGES


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
