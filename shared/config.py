"""What every service's config section is built on. The sections live in each service's domain/config.py and the whole
model in services/config.py."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ConfigError(ValueError):
    """Raised at start-up; the message names the offending key so the fix is obvious."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(gt=0, le=2)]
