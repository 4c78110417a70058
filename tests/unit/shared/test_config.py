from pathlib import Path

import pytest

from services.config import RadarConfig, load_config
from shared.config import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_example_is_the_default() -> None:
    assert load_config(ROOT / "deploy" / "radar.yaml") == RadarConfig()


def test_no_file_means_defaults() -> None:
    assert load_config(None).signals.usage_thresholds == [0.8, 0.9, 0.95]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("signals:\n  usage_treshold: [0.8]\n", "signals.usage_treshold"),
        ("signals:\n  usage_thresholds: [0.9, 0.8]\n", "signals.usage_thresholds"),
        ("scoring:\n  weights:\n    product_usage: 50\n", "scoring.weights"),
        ("scoring:\n  tiers:\n    immediate: 50\n", "scoring.tiers"),
        ("scoring: [1, 2]\n", "scoring"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "radar.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert named in str(caught.value)


def test_unreadable_and_invalid_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("signals: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
