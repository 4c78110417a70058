"""The signal-type table: every type declared once, with what the other services read of it."""

from __future__ import annotations

import pytest

from services.config import load_config
from shared.schemas import Signal
from shared.signal_types import SIGNAL_KINDS, SignalType, kinds_where, summary_of

pytestmark = pytest.mark.unit


def test_every_type_has_one_entry_under_its_own_name() -> None:
    assert list(SIGNAL_KINDS) == list(SignalType)
    assert all(kind.type is signal_type for signal_type, kind in SIGNAL_KINDS.items())


def test_the_wire_schema_accepts_exactly_the_declared_types() -> None:
    assert set(Signal.model_fields["type"].annotation) == set(SignalType)


def test_the_digest_default_is_read_from_the_table() -> None:
    assert set(load_config(None).notifier.fatigue.digest_signals) == kinds_where(lambda kind: kind.digest_by_default)
    assert kinds_where(lambda kind: kind.digest_by_default) == {
        SignalType.USAGE_GROWTH,
        SignalType.PREMIUM_FEATURE_INTEREST,
        SignalType.NEW_TEAM_ADOPTION,
    }


def test_the_seeds_cross_sell_signals_go_to_the_ae() -> None:
    assert kinds_where(lambda kind: kind.motion == "cross_sell") == {SignalType.PREMIUM_FEATURE_INTEREST, SignalType.NEW_TEAM_ADOPTION}


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        (
            {"type": "usage_threshold_crossed", "metric": "api_calls", "utilization": 0.9, "value": 9000, "limit": 10000},
            "api_calls at 90% of its limit (9,000 of 10,000)",
        ),
        ({"type": "seat_threshold_crossed", "metric": "seats", "utilization": 0.95}, "seats at 95% of its limit"),
        ({"type": "usage_sustained_high"}, "Usage sustained high"),
        ({"type": "usage_growth", "metric": "events", "growth": 0.6}, "events grew 60% week over week"),
        ({"type": "usage_growth"}, "Usage growth"),
        ({"type": "new_domain_user", "domain": "acme.io"}, "a user from a new domain: acme.io"),
        ({"type": "new_team_adoption"}, "a new team adopted it: unknown"),
        ({"type": "premium_feature_interest", "feature": "sso", "tries": 3}, "tried sso 3 times"),
        ({"type": "premium_feature_interest"}, "tried a premium feature times"),
        ({"type": "from_a_newer_version"}, "From a newer version"),
        ({}, ""),
    ],
)
def test_a_stored_signal_is_said_in_one_line(payload: dict[str, object], said: str) -> None:
    assert summary_of(payload) == said
