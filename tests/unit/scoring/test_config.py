"""The scoring section of the YAML config: every band is data, and a bad file names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config import RadarConfig, load_config
from shared.config import ConfigError


@pytest.mark.parametrize(
    ("text", "named", "why"),
    [
        (
            "scoring:\n  bands:\n    satisfaction:\n      nps: [{min: 5, points: 10}, {min: 3, max: 6, points: 2}]\n",
            "scoring.bands.satisfaction.nps",
            "bands overlap",
        ),
        (
            "scoring:\n  bands:\n    growth:\n      funding: [{value: a, points: 1}, {value: a, points: 2}]\n",
            "scoring.bands.growth.funding",
            "repeat",
        ),
        (
            "scoring:\n  bands:\n    growth:\n      open_roles: [{value: a, points: 1}, {min: 2, points: 2}]\n",
            "open_roles",
            "all numeric or all named",
        ),
        ("scoring:\n  bands:\n    growth:\n      open_roles: [{min: 5, max: 2, points: 1}]\n", "open_roles", "must be below"),
        ("scoring:\n  bands:\n    growth:\n      open_roles: []\n", "open_roles", "at least one band"),
        ("scoring:\n  bands:\n    growth:\n      headcount: []\n", "scoring.bands.growth.headcount", "Extra inputs"),
        ("scoring:\n  model: fancy\n", "scoring.model", "readiness"),
        ("scoring:\n  health:\n    weights:\n      billing: 50\n", "scoring.health.weights", "add up to 100"),
        ("scoring:\n  health:\n    threshold: 170\n", "scoring.health.threshold", "less than or equal"),
        ("scoring:\n  opportunity:\n    quarterly: 9\n", "scoring.opportunity", "immediate > quarterly > annual"),
        ("scoring:\n  routing:\n    large_upsell_share: 0\n", "scoring.routing.large_upsell_share", "greater than 0"),
    ],
)
def test_bad_scoring_config_names_the_key(tmp_path: Path, text: str, named: str, why: str) -> None:
    path = tmp_path / "radar.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert named in str(caught.value) and why in str(caught.value)


def test_touching_bands_and_gaps_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "radar.yaml"
    path.write_text(
        "scoring:\n  bands:\n    growth:\n      open_roles: [{max: 5, points: 1}, {min: 5, max: 10, points: 2}, {min: 20, points: 6}]\n"
    )
    assert len(load_config(path).scoring.bands.growth.open_roles) == 3


def test_the_default_model_is_the_seeds() -> None:
    scoring = RadarConfig().scoring
    assert (scoring.model, scoring.health.threshold, scoring.routing.large_upsell_share) == ("readiness", 70, 0.2)
    assert [band.points for band in scoring.bands.product_usage.adoption_rate] == [15, 10, 5, 2]
