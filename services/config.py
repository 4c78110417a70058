"""The whole YAML config: one section per service, each defined in that service's domain. Bad files stop the service, naming the key."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from services.ingest.domain.config import IngestConfig
from services.notifier.domain.config import NotifierConfig
from services.scoring.domain.config import ScoringConfig
from services.scoring.outcomes.domain.config import OutcomesConfig
from services.signals.domain.config import SignalsConfig
from shared.config import ConfigError, Section


class RadarConfig(Section):
    signals: SignalsConfig = SignalsConfig()
    scoring: ScoringConfig = ScoringConfig()
    notifier: NotifierConfig = NotifierConfig()
    ingest: IngestConfig = IngestConfig()
    outcomes: OutcomesConfig = OutcomesConfig()


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
