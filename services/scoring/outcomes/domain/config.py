"""The outcomes section of the YAML config (`outcomes:`): precision window, segments, the weekly summary."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.config import Section


class OutcomesConfig(Section):
    """Revenue outcomes and signal precision (`GET /v1/metrics/*`, `radar report`, the weekly Slack summary)."""

    precision_window_days: float = Field(default=90, gt=0, description="an alerted account that expands within this many days is a hit")
    segments: dict[str, float] = Field(
        default={"smb": 0, "mid_market": 25_000, "enterprise": 100_000},
        description="segment name -> lowest ARR in it; an account's segment is its ARR at the start of the period",
    )
    summary_every_hours: float = Field(default=168, ge=0, description="the owner's expansion summary to Slack; 0 = off")

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one segment is needed, e.g. {all: 0}")
        if min(value.values()) != 0:
            raise ValueError("one segment must start at 0 so every account has a segment")
        if len(set(value.values())) != len(value):
            raise ValueError("two segments start at the same ARR")
        return value
