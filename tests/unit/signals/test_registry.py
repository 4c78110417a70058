"""Every signal type declared in shared/signal_types.py has exactly one detector in services/signals/domain/rules.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.signals.domain import rules
from services.signals.domain.apply import STEPS, apply_event, apply_event_in_full, fast_path_holds
from services.signals.domain.rules import DETECTORS, LEVEL_MOVERS, Detector, detects, detects_level
from shared.signal_types import SIGNAL_KINDS, SignalType
from shared.wire import UsageEvent


def test_every_signal_type_has_exactly_one_detector() -> None:
    assert set(DETECTORS) == set(SignalType)
    for signal_type, detector in DETECTORS.items():
        assert detector.signal_type is signal_type
        assert (detector.on_event is None) != (detector.on_level is None), f"{signal_type}: one detector, of one shape"
        assert detector.reads, f"{signal_type} reads no event kind"


def test_every_signal_type_has_its_kind_too() -> None:
    assert set(SIGNAL_KINDS) == set(SignalType)


@pytest.mark.parametrize("decorator", [lambda kind: detects(kind, UsageEvent), detects_level], ids=["event", "level"])
def test_a_second_detector_for_a_type_is_refused(decorator: Callable[[SignalType], Callable[[Any], Any]]) -> None:
    taken = next(iter(DETECTORS))
    before = dict(DETECTORS)
    with pytest.raises(ValueError, match="has a detector already"):
        decorator(taken)(lambda *args: None)
    assert DETECTORS == before


def test_each_event_detector_runs_on_the_kinds_it_reads_and_level_detectors_on_every_level_mover() -> None:
    for kind, (detectors, _bookkeeping) in STEPS.items():
        assert detectors == tuple(d.on_event for d in DETECTORS.values() if d.on_event is not None and kind in d.reads)
    for detector in DETECTORS.values():
        if detector.on_level is not None:
            assert detector.reads == LEVEL_MOVERS
    assert all(kind in STEPS for detector in DETECTORS.values() if detector.on_event for kind in detector.reads)


def test_the_fast_path_knows_every_detector_usage_events_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    """A detector on usage events that the fast path does not know turns it off: correct, and slower."""
    assert fast_path_holds()
    assert apply_event is not apply_event_in_full
    unknown = DETECTORS[SignalType.NEW_DOMAIN_USER]
    monkeypatch.setitem(rules.DETECTORS, unknown.signal_type, Detector(unknown.signal_type, (UsageEvent,), on_event=unknown.on_event))
    assert not fast_path_holds()
