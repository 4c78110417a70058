"""The web console's view models: filters, pages, sparklines, drivers, usage charts, seats, alert states and
the outcomes charts' series, all pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.scoring.entrypoints.console import views
from shared.signal_types import summary_of

SEGMENTS = {"smb": 0, "mid_market": 25_000, "enterprise": 100_000}
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def test_filters_are_checked_and_name_the_field() -> None:
    parsed = views.parse_filters({"tier": "immediate", "owner": " dana@x.example ", "segment": "smb", "q": "acme", "page": "3"}, SEGMENTS)
    assert parsed == views.AccountFilters("immediate", "dana@x.example", "smb", "acme", 3)
    assert views.parse_filters({"tier": "", "q": "  "}, SEGMENTS) == views.AccountFilters()
    for params, field in (({"tier": "hot"}, "tier"), ({"segment": "huge"}, "segment"), ({"page": "0"}, "page"), ({"page": "x"}, "page")):
        with pytest.raises(views.FilterError, match=f"^{field}:"):
            views.parse_filters(params, SEGMENTS)
    with pytest.raises(views.FilterError, match="^search:"):
        views.parse_filters({"q": "a\x00b"}, SEGMENTS)


def test_filter_query_keeps_what_is_set_and_drops_page_one() -> None:
    filters = views.AccountFilters(tier="low", search="x y", page=1)
    assert filters.query() == {"tier": "low", "q": "x y"}
    assert filters.query(page=2) == {"tier": "low", "q": "x y", "page": "2"}


def test_segment_bounds_match_the_bands_outcomes_assigns() -> None:
    assert views.segment_bounds("smb", SEGMENTS) == (0, 25_000)
    assert views.segment_bounds("mid_market", SEGMENTS) == (25_000, 100_000)
    assert views.segment_bounds("enterprise", SEGMENTS) == (100_000, None)


def test_like_pattern_escapes_the_wildcards_a_search_may_hold() -> None:
    assert views.like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_pager_counts_rows_and_neighbours() -> None:
    middle = views.pager(2, 120, size=50)
    assert (middle.pages, middle.first, middle.last, middle.previous, middle.next) == (3, 51, 100, 1, 3)
    last = views.pager(3, 120, size=50)
    assert (last.first, last.last, last.next) == (101, 120, None)
    empty = views.pager(1, 0)
    assert (empty.pages, empty.first, empty.last, empty.previous, empty.next) == (1, 0, 0, None, None)
    beyond = views.pager(9, 120, size=50)
    assert (beyond.first, beyond.last) == (0, 0)


def test_sparkline_is_on_a_fixed_scale_so_rows_compare() -> None:
    assert views.sparkline([]) == ""
    assert views.sparkline([0, 100], width=10, height=24) == "0.0,22.0 10.0,2.0"
    assert views.sparkline([50], width=10, height=24) == "0.0,12.0 10.0,12.0"  # one point: a flat line
    assert views.sparkline([150, -5], width=10, height=24) == "0.0,2.0 10.0,22.0"  # clamped
    assert (views.trend_delta([40, 55, 70]), views.trend_delta([70])) == (30, None)


BREAKDOWN = {
    "factors": [
        {"factor": "satisfaction", "weight": 25, "points": None, "detail": "no data yet", "parts": []},
        {"factor": "expansion_potential", "weight": 10, "points": 6.0, "detail": "1 plan above", "parts": []},
        {"factor": "product_usage", "weight": 30, "points": 30.0, "detail": "api_calls at 93%", "parts": [{"name": "adoption"}]},
    ]
}


def test_drivers_strongest_first_and_the_top_one() -> None:
    found = views.drivers(BREAKDOWN)
    assert [(d.factor, d.share) for d in found] == [("product_usage", 1.0), ("expansion_potential", 0.6), ("satisfaction", 0.0)]
    assert found[0].label == "Product usage" and found[0].parts == [{"name": "adoption"}]
    top = views.top_driver(BREAKDOWN)
    assert top is not None and (top.factor, top.detail) == ("product_usage", "api_calls at 93%")
    assert views.top_driver({"factors": [{"factor": "x", "weight": 10, "points": 0}]}) is None
    assert views.drivers(None) == [] and views.drivers({"factors": ["junk"]}) == []


def test_signal_summaries_say_what_was_seen() -> None:
    crossing = {"type": "usage_threshold_crossed", "metric": "api_calls", "utilization": 0.93, "value": 9300, "limit": 10000}
    assert summary_of(crossing) == "api_calls at 93% of its limit (9,300 of 10,000)"
    assert summary_of({"type": "usage_growth", "metric": "events", "growth": 0.5}) == "events grew 50% week over week"
    assert summary_of({"type": "new_domain_user", "domain": "b.example"}) == "a user from a new domain: b.example"
    assert summary_of({"type": "premium_feature_interest", "feature": "sso", "tries": 3}) == "tried sso 3 times"
    assert summary_of({"type": "something_new"}) == "Something new"


def test_usage_charts_run_from_the_signals_to_the_current_value_with_the_threshold_lines() -> None:
    usage = {"api_calls": {"value": 9300, "limit": 10000, "utilization": 0.93, "at": NOW}}
    signals = [
        {"metric": "api_calls", "value": 8200, "event_timestamp": "2026-11-06T12:00:00Z"},
        {"metric": "api_calls", "value": 9300, "event_timestamp": "2026-11-10T12:00:00Z"},  # the current value's own signal
        {"metric": "seats", "value": 3, "event_timestamp": "2026-11-06T12:00:00Z"},  # no current seats usage: no chart
    ]
    (chart,) = views.usage_charts(usage, signals, NOW)
    assert chart.values == [8200, 9300]
    assert chart.times == [datetime(2026, 11, 6, 12, tzinfo=UTC).timestamp(), NOW.timestamp()]
    assert chart.lines == {"limit": 10000, "80%": 8000, "90%": 9000, "95%": 9500}
    assert chart.as_json()["metric"] == "api_calls"


def test_seats_come_from_the_first_seat_metric_else_the_licence() -> None:
    assert views.seats({"api_calls": {"value": 1, "limit": 2}}) is None
    assert views.seats({"seats": {"value": 45, "limit": 50}}, {"seats": 60}) == views.Seats(45, 50, 0.9)
    assert views.seats({}, {"seats": 60, "api_calls": 10}) == views.Seats(None, 60, None)
    assert views.seats({}, {"seats": "many"}) is None


def test_event_times_read_as_utc_minutes() -> None:
    assert views.event_time({"event_timestamp": "2026-11-10T13:30:59+01:00"}) == "2026-11-10 12:30 UTC"
    assert views.event_time({}) == "" and views.event_time({"event_timestamp": "soon"}) == "soon"


def _alert(alert_id: str) -> dict:
    signal = {"type": "usage_threshold_crossed", "metric": "api_calls", "utilization": 0.9, "value": 900, "limit": 1000}
    return {
        "alert_id": alert_id,
        "kind": "expansion",
        "score": 88,
        "tier": "immediate",
        "signal": signal,
        "created_at": "2026-11-10T12:00:00Z",
    }


def test_alert_rows_carry_their_state_and_delivery() -> None:
    rows = views.alert_rows(
        [_alert("a1"), _alert("a2"), _alert("a3"), _alert("a4"), _alert("a5")],
        closed={"a2": ("dismissed", "not a fit")},
        routes={"a1": "ping", "a2": "ping", "a3": "digest", "a4": "ping"},
        deliveries={
            "a1": [("slack:default", "sent", 1)],
            "a2": [("slack:default", "dead", 5)],
            "a4": [("crm", "pending", 2), ("slack", "sent", 1)],
        },
        snoozed_until=None,
    )
    states = {row.alert_id: (row.status, row.delivery_state, row.actionable) for row in rows}
    assert states == {
        "a1": ("open", "delivered", True),
        "a2": ("dismissed", "failed", False),
        "a3": ("open", "held (digest)", True),
        "a4": ("open", "partly delivered", True),
        "a5": ("open", "not at the notifier yet", False),  # nothing to act on until the notifier has it
    }
    assert rows[1].closed_reason == "not a fit" and rows[0].title == "api_calls at 90% of its limit (900 of 1,000)"


def test_pipeline_totals_cover_every_stage_in_order() -> None:
    totals = views.pipeline_totals([("won", 2, 30_000, 25_000), ("identified", 3, 45_000, None)])
    assert [(t.stage, t.count, t.amount) for t in totals] == [
        ("identified", 3, 45_000),
        ("qualified", 0, 0),
        ("proposal", 0, 0),
        ("won", 2, 25_000),  # booked, not expected
        ("lost", 0, 0),
    ]


def test_revenue_series_one_line_overall_and_per_segment() -> None:
    reports = [
        ("2026-Q3", {"nrr": 1.1}, {"smb": {"nrr": 1.0}}),
        ("2026-Q4", {"nrr": 1.2}, {"smb": {"nrr": 1.05}, "enterprise": {"nrr": 1.3}}),
    ]
    assert views.revenue_series(reports, "nrr") == {
        "labels": ["2026-Q3", "2026-Q4"],
        "series": {"All accounts": [1.1, 1.2], "Enterprise": [None, 1.3], "Smb": [1.0, 1.05]},
    }


def test_signal_series_by_type_and_by_tier_in_tier_order() -> None:
    rows = [
        {"signal_type": "*", "tier": "*", "precision": 0.3, "lift": 2.0, "alerted": 10},
        {"signal_type": "usage_growth", "tier": "*", "precision": 0.5, "lift": 3.0, "alerted": 4},
        {"signal_type": "*", "tier": "low", "precision": 0.1, "lift": 0.5, "alerted": 2},
        {"signal_type": "*", "tier": "immediate", "precision": 0.6, "lift": 4.0, "alerted": 5},
        {"signal_type": "usage_growth", "tier": "low", "precision": 0.2, "lift": 1.0, "alerted": 1},
    ]
    series = views.signal_series(rows)
    assert series["by_type"] == {"labels": ["Usage growth"], "series": {"Precision": [0.5], "Lift": [3.0]}, "alerted": [4]}
    assert series["by_tier"]["labels"] == ["Immediate", "Low"] and series["by_tier"]["series"]["Lift"] == [4.0, 0.5]


def test_money_and_percent() -> None:
    assert [views.money(v) for v in (None, 950, 1_250, 2_500_000)] == ["—", "$950", "$1.2k", "$2.5M"]
    assert (views.percent(None), views.percent(0.934), views.percent(0.934, 1)) == ("—", "93%", "93.4%")
