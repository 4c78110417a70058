"""What a scoring model answers (a ScoreCard of weighted factors, each from banded parts) and the band arithmetic
both models share. Every band comes from `ScoringConfig`; a part without data is None, never a silent zero."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from services.scoring.domain.config import Band
from services.scoring.domain.facts import Facts
from shared.schemas import Tier


def band_points(bands: list[Band], value: float | str) -> float | None:
    """Numeric bands are [min, max); None when the value falls in no band (a gap in the config)."""
    for band in bands:
        if band.value is not None:
            if isinstance(value, str) and band.value == value:
                return band.points
            continue
        if isinstance(value, str):
            continue
        if (band.min is None or value >= band.min) and (band.max is None or value < band.max):
            return band.points
    return None


def round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


@dataclass(frozen=True)
class PartScore:
    name: str
    points: float | None  # None: no data
    max_points: float
    detail: str


@dataclass(frozen=True)
class FactorScore:
    factor: str
    weight: float
    fraction: float | None  # None: no data for this part
    detail: str
    parts: tuple[PartScore, ...] = ()

    @property
    def points(self) -> float:
        return self.weight * (self.fraction or 0.0)


@dataclass(frozen=True)
class ScoreCard:
    model: str
    score: int  # 0-100
    tier: Tier
    action: str
    factors: tuple[FactorScore, ...]

    @property
    def missing(self) -> list[str]:
        return [factor.factor for factor in self.factors if factor.fraction is None]

    def breakdown(self) -> dict[str, object]:
        return {
            "model": self.model,
            "score": self.score,
            "tier": self.tier.value,
            "action": self.action,
            "missing": self.missing,
            "factors": [
                {
                    "factor": f.factor,
                    "weight": f.weight,
                    "points": None if f.fraction is None else round(f.points, 2),
                    "detail": f.detail,
                    "parts": [{"name": p.name, "points": p.points, "max": p.max_points, "detail": p.detail} for p in f.parts],
                }
                for f in self.factors
            ],
        }


class ScoringModel(Protocol):
    name: str

    def score(self, facts: Facts) -> ScoreCard: ...


def part(name: str, bands: list[Band], value: float | str | None, detail: str) -> PartScore:
    top = max(band.points for band in bands)
    if value is None:
        return PartScore(name, None, top, f"no {name.replace('_', ' ')} data")
    return PartScore(name, band_points(bands, value), top, detail)


def share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"
