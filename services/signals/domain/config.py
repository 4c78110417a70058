"""The signals service's section of the YAML config: thresholds, windows, batching."""

from __future__ import annotations

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
