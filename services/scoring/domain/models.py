"""The configured scoring model (`scoring.model`)."""

from __future__ import annotations

from services.scoring.domain.config import ScoringConfig
from services.scoring.domain.opportunity import OpportunityModel
from services.scoring.domain.readiness import ReadinessModel
from services.scoring.domain.scorecard import ScoringModel

MODELS: dict[str, type[ReadinessModel] | type[OpportunityModel]] = {"readiness": ReadinessModel, "opportunity": OpportunityModel}


def model_for(config: ScoringConfig) -> ScoringModel:
    return MODELS[config.model](config)
