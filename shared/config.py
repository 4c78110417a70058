"""The YAML config model: thresholds, score weights and tiers. Bad files stop the service, naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """Raised at start-up; the message names the offending key so the fix is obvious."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(gt=0, le=2)]


class SignalsConfig(_Section):
    usage_thresholds: list[Fraction] = [0.8, 0.9, 0.95]
    recent_event_ids_per_account: int = Field(default=2_000, ge=0)

    @field_validator("usage_thresholds")
    @classmethod
    def _ascending_unique(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("at least one threshold is needed")
        if sorted(set(value)) != value:
            raise ValueError("thresholds must be unique and ascending, e.g. [0.8, 0.9, 0.95]")
        return value


class ScoreWeights(_Section):
    """The five parts of the seeds' readiness model; they must add up to 100."""

    product_usage: float = Field(default=30, ge=0)
    satisfaction: float = Field(default=25, ge=0)
    growth: float = Field(default=20, ge=0)
    relationship: float = Field(default=15, ge=0)
    expansion_potential: float = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _sum_to_100(self) -> ScoreWeights:
        total = sum(self.model_dump().values())
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100, they add up to {total:g}")
        return self


class TierBounds(_Section):
    """Lower bounds of each tier (inclusive); below `medium_term` is Low."""

    immediate: int = Field(default=80, ge=0, le=100)
    short_term: int = Field(default=60, ge=0, le=100)
    medium_term: int = Field(default=40, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> TierBounds:
        if not self.immediate > self.short_term > self.medium_term:
            raise ValueError("tier bounds must satisfy immediate > short_term > medium_term")
        return self


class ScoringConfig(_Section):
    weights: ScoreWeights = ScoreWeights()
    tiers: TierBounds = TierBounds()


class RadarConfig(_Section):
    signals: SignalsConfig = SignalsConfig()
    scoring: ScoringConfig = ScoringConfig()


def _key_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def parse_config(data: object, source: str = "config") -> RadarConfig:
    if data is None:
        data = {}
    try:
        return RadarConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_key_path(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_config(path: Path | None) -> RadarConfig:
    """No path means the built-in defaults (the seeds' model)."""
    if path is None:
        return RadarConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"RADAR_CONFIG={path}: cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return parse_config(data, source=str(path))
