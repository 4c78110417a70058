"""The quiet-usage fast path against the full rules: a sequence of events and account updates applied both ways
must leave the same state and emit the same signals. Hypothesis searches for sequences where they differ; the
edges where the fast path must step aside are also spelled out, each with the signal it must not swallow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.signals.domain.apply import apply_account_update, apply_event, apply_event_in_full
from services.signals.domain.config import Rules
from services.signals.domain.fast_path import quiet_usage
from services.signals.domain.state import AccountState, dump_state
from shared.schemas import AccountUpdate, SignalType
from shared.wire import GaugeEvent, UsageEvent, UserAddedEvent, UserRemovedEvent
from shared.wire import WireEvent as Event
from shared.wire import WireUserRef as UserRef

# low thresholds, a seat threshold the usage ones lack, a small growth floor and a short id memory: short
# sequences reach every edge
RULES = Rules(
    thresholds=(0.5, 0.8, 0.9),
    seat_thresholds=(0.5, 0.75, 1.0),
    sustained_utilization=0.6,
    recent_event_ids=6,
    growth_rate=0.5,
    growth_min_previous_week=4,
)
START = datetime(2026, 9, 20, tzinfo=UTC)
METRICS = ["api_calls", "storage", "seats"]
Step = Event | AccountUpdate


def usage(event_id: str, at: datetime, quantity: float, metric: str = "api_calls") -> UsageEvent:
    return UsageEvent(id=event_id, account_id="acme", timestamp=at, metric=metric, quantity=quantity)


def limits(at: datetime, anchor: date | None = None, **values: float) -> AccountUpdate:
    return AccountUpdate(account_id="acme", name="Acme", limits=values, billing_anchor=anchor, updated_at=at)


def replay(steps: list[Step], apply) -> tuple[dict, list[dict]]:
    state, emitted = AccountState(account_id="acme"), []
    for step in steps:
        signals = apply_account_update(state, step, RULES) if isinstance(step, AccountUpdate) else apply(state, step, RULES)
        emitted += [signal.model_dump(exclude={"emitted_at"}) for signal in signals]
    return dump_state(state), emitted


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    """Mostly usage moving forward in time, in bursts and lulls (so quiet runs, crossings, week-over-week growth
    and period roll-overs all come up), with late events, duplicates, gauges, seats and limit changes mixed in."""
    at, sequence = START, []
    for index in range(draw(st.integers(1, 80))):
        at += timedelta(hours=draw(st.sampled_from([0, 2, 8, 30, 120])))
        late = draw(st.sampled_from([None] * 12 + [timedelta(days=9), timedelta(days=33)]))
        when = at - late if late else at
        event_id = draw(st.sampled_from(["dup-1", "dup-2", f"e{index}", f"e{index}", f"e{index}"]))
        metric = draw(st.sampled_from(METRICS))
        kind = draw(st.sampled_from(["usage"] * 10 + ["gauge", "user", "update"]))
        if kind == "usage":
            quantity = draw(st.one_of(st.sampled_from([0.0, 1.0, 2.0, 5.0, 20.0]), st.floats(min_value=0, max_value=6)))
            sequence.append(usage(event_id, when, quantity, metric))
        elif kind == "gauge":
            value = float(draw(st.integers(0, 60)))
            sequence.append(GaugeEvent(id=event_id, account_id="acme", timestamp=when, metric=metric, value=value))
        elif kind == "user":
            name, added = draw(st.sampled_from(["ann", "bob", "cy", "dee"])), draw(st.booleans())
            user = UserRef(id=name, email=f"{name}@acme.com")
            if added:
                sequence.append(UserAddedEvent(id=event_id, account_id="acme", timestamp=when, user=user))
            else:
                sequence.append(UserRemovedEvent(id=event_id, account_id="acme", timestamp=when, user=user))
        else:
            values = draw(st.dictionaries(st.sampled_from(METRICS), st.sampled_from([4.0, 10.0, 20.0, 40.0, 7.5]), max_size=3))
            anchor = draw(st.sampled_from([None, date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 31)]))
            sequence.append(limits(when, anchor, **values))
    return sequence


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
def test_the_fast_path_agrees_with_the_full_rules(steps: list[Step]) -> None:
    assert replay(steps, apply_event) == replay(steps, apply_event_in_full)


def test_the_fast_path_takes_the_common_case_and_declines_without_a_trace() -> None:
    state = AccountState(account_id="acme")
    apply_account_update(state, limits(START, api_calls=100), RULES)
    first = usage("first", START, 1)
    assert not quiet_usage(state, first, RULES)  # the period, the metric and the week are new: the full rules
    apply_event(state, first, RULES)
    assert quiet_usage(state, usage("quiet", START + timedelta(hours=1), 2), RULES)
    assert state.usage["api_calls"].used == 3 and state.weekly["api_calls"] == {"2026-09-14": 3.0}
    assert "quiet" in state.recent_event_ids
    before = dump_state(state)
    assert not quiet_usage(state, usage("crossing", START, 60), RULES)
    assert dump_state(state) == before


WEEK = timedelta(days=7)
# each: a sequence in which the last event looks quiet but must fire, and the signal it fires
EDGES = {
    "a threshold reached exactly": (
        [limits(START, api_calls=10), usage("a", START, 4), usage("b", START, 1)],
        (SignalType.USAGE_THRESHOLD_CROSSED, 0.5),
    ),
    "a higher threshold with a lower one spent": (
        [limits(START, api_calls=10), usage("a", START, 5), usage("b", START, 2), usage("c", START, 1)],
        (SignalType.USAGE_THRESHOLD_CROSSED, 0.8),
    ),
    "a seat threshold the usage thresholds lack": (
        [limits(START, seats=4), usage("a", START, 2, "seats"), usage("b", START, 1, "seats")],
        (SignalType.SEAT_THRESHOLD_CROSSED, 0.75),
    ),
    "growth within a week already counted": (
        [usage("a", START - WEEK, 10), usage("b", START, 1), usage("c", START, 10), usage("d", START, 5)],
        (SignalType.USAGE_GROWTH, 0.5),
    ),
    "growth from a week exactly at the floor": (
        [usage("a", START - WEEK, 4), usage("b", START, 1), usage("c", START, 1), usage("d", START, 5)],
        (SignalType.USAGE_GROWTH, 0.5),
    ),
    "growth just past the rate": (
        [usage("a", START - WEEK, 10), usage("b", START, 1), usage("c", START, 14.05)],
        (SignalType.USAGE_GROWTH, 0.5),
    ),
    "sustained high after a high period, between two thresholds": (
        [
            limits(START, api_calls=10),
            usage("a", START, 7),  # September: 70 %
            usage("b", START + timedelta(days=12), 5),  # October
            usage("c", START + timedelta(days=12), 1),
        ],
        (SignalType.USAGE_SUSTAINED_HIGH, 0.6),
    ),
}


@pytest.mark.parametrize("sequence, expected", EDGES.values(), ids=EDGES.keys())
def test_the_fast_path_steps_aside_where_a_signal_is_due(sequence: list[Step], expected: tuple[SignalType, float]) -> None:
    state, emitted = replay(sequence, apply_event)
    assert (state, emitted) == replay(sequence, apply_event_in_full)
    last = sequence[-1]
    assert (emitted[-1]["type"], emitted[-1]["threshold"], emitted[-1]["event_id"]) == (*expected, last.id)
