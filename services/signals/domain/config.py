"""The signals service's section of the YAML config (thresholds, windows, batching), and `Rules`, the thresholds as
the detectors read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import Field, field_validator

from shared.config import Fraction, Section


class SignalsConfig(Section):
    usage_thresholds: list[Fraction] = [0.8, 0.9, 0.95]
    recent_event_ids_per_account: int = Field(
        default=48,
        ge=0,
        description="event ids each account remembers, to drop a duplicate that got past ingest (its 7-day store is the"
        " real guard), as 64-bit hashes: every state write carries them, 10.7 bytes each, so a larger window costs"
        " changelog bytes on every flush; a hash shared by two ids drops an event with probability window / 2**64",
    )
    seat_metric: str = Field(default="seats", min_length=1, description="the limit name seats count against")
    seat_thresholds: list[Fraction] = [0.8, 0.9, 0.95]
    sustained_utilization: Fraction = 0.8
    sustained_periods: int = Field(default=2, ge=2)
    premium_feature_tries: int = Field(default=3, ge=1)
    premium_feature_window_days: float = Field(default=14, gt=0)
    growth_rate: float = Field(default=0.5, gt=0, description="week-over-week growth (0.5 = +50 %) that signals usage_growth")
    growth_min_previous_week: float = Field(default=100, ge=0, description="a smaller previous week is too little to compare")
    batch_size: int = Field(default=5_000, ge=1, description="events the worker takes at once")
    batch_wait_seconds: float = Field(default=0.02, gt=0, le=5, description="longest wait to fill a batch (adds to latency)")
    state_flush_seconds: float = Field(default=1.0, gt=0, le=60, description="how often changed account state is written")

    @field_validator("usage_thresholds", "seat_thresholds")
    @classmethod
    def _ascending_unique(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("at least one threshold is needed")
        if sorted(set(value)) != value:
            raise ValueError("thresholds must be unique and ascending, e.g. [0.8, 0.9, 0.95]")
        return value


@dataclass(frozen=True)
class Rules:
    """What the detectors (domain/rules.py) read: a plain frozen dataclass, as every event reads several fields."""

    thresholds: tuple[float, ...] = (0.8, 0.9, 0.95)
    recent_event_ids: int = 48
    seat_metric: str = "seats"
    seat_thresholds: tuple[float, ...] = (0.8, 0.9, 0.95)
    sustained_utilization: float = 0.8
    sustained_periods: int = 2
    premium_feature_tries: int = 3
    premium_feature_window: timedelta = timedelta(days=14)
    growth_rate: float = 0.5
    growth_min_previous_week: float = 100
    history_periods: int = 6
    history_weeks: int = 3
    # below this share of a limit no level detector (threshold crossed, sustained high) can fire
    lowest_trigger: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lowest_trigger", min((*self.thresholds, *self.seat_thresholds, self.sustained_utilization)))

    @classmethod
    def from_config(cls, signals: SignalsConfig) -> Rules:
        return cls(
            thresholds=tuple(signals.usage_thresholds),
            recent_event_ids=signals.recent_event_ids_per_account,
            seat_metric=signals.seat_metric,
            seat_thresholds=tuple(signals.seat_thresholds),
            sustained_utilization=signals.sustained_utilization,
            sustained_periods=signals.sustained_periods,
            premium_feature_tries=signals.premium_feature_tries,
            premium_feature_window=timedelta(days=signals.premium_feature_window_days),
            growth_rate=signals.growth_rate,
            growth_min_previous_week=signals.growth_min_previous_week,
        )
