"""Outcomes, pure: a small book of accounts over 2026 with every figure worked out by hand in the comments;
periods, segments, stages, automatic closes, signal precision and lift by type and tier, the summary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.scoring.outcomes.domain.metrics import (
    ALL,
    AlertFact,
    active_accounts,
    expansions_of,
    grouped_revenue_metrics,
    period_arr,
    revenue_metrics,
    segment_for,
    signal_metrics,
)
from services.scoring.outcomes.domain.periods import PeriodError, parse_period, quarters_up_to
from services.scoring.outcomes.domain.revenue import ArrChange, Opportunity
from services.scoring.outcomes.domain.stages import Stage, StageError, automatic_close, check_stage_change
from services.scoring.outcomes.domain.summary import PipelineSnapshot, summary_text

SEGMENTS = {"smb": 0, "mid_market": 25_000, "enterprise": 100_000}


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


YEAR = parse_period("2026")
BOOK = [
    # paying on 2026-01-01: A 10,000 + B 20,000 + C 30,000 + D 120,000 = 180,000 over 4 accounts
    ArrChange("A", d("2025-03-01"), 0, 10_000),
    ArrChange("B", d("2025-05-01"), 0, 20_000),
    ArrChange("C", d("2025-06-01"), 0, 30_000),
    ArrChange("D", d("2025-09-01"), 0, 120_000),
    ArrChange("A", d("2026-02-01"), 10_000, 15_000),  # expansion +5,000
    ArrChange("D", d("2026-03-01"), 120_000, 150_000),  # expansion +30,000
    ArrChange("B", d("2026-04-01"), 20_000, 12_000),  # contraction 8,000
    ArrChange("E", d("2026-05-01"), 0, 25_000),  # new logo 25,000
    ArrChange("C", d("2026-06-01"), 30_000, 0),  # churn 30,000
    ArrChange("A", d("2026-08-01"), 15_000, 18_000),  # expansion +3,000
    ArrChange("E", d("2026-10-01"), 25_000, 30_000),  # the new logo's own upgrade +5,000 (not in the cohort)
]
PIPELINE = [
    Opportunity("A", d("2025-12-01"), "won", d("2025-12-20"), 1_000),  # identified before 2026: not in the year
    Opportunity("A", d("2026-01-10"), "won", d("2026-02-01"), 5_000),  # 22 days
    Opportunity("D", d("2026-01-20"), "won", d("2026-03-01"), 30_000),  # 40 days
    Opportunity("B", d("2026-03-01"), "lost", d("2026-04-01")),
    Opportunity("C", d("2026-05-01"), "open"),
]


def test_the_year_line_by_line() -> None:
    year = revenue_metrics(BOOK, PIPELINE, YEAR.start, YEAR.end)
    assert (year.accounts_at_start, year.starting_arr) == (4, 180_000)
    assert (year.expansion, year.contraction, year.churn) == (38_000, 8_000, 30_000)  # 5,000 + 30,000 + 3,000
    # NRR = (180,000 + 38,000 - 8,000 - 30,000) / 180,000 = 180,000 / 180,000
    assert year.ending_cohort_arr == 180_000
    assert year.nrr == pytest.approx(1.0)
    # GRR = (180,000 - 30,000 - 8,000) / 180,000 = 142,000 / 180,000
    assert year.grr == pytest.approx(142 / 180)
    # expansion revenue = 38,000 + the new logo's 5,000; its share of all booked = 43,000 / (25,000 + 43,000)
    assert (year.new, year.new_logo_expansion, year.expansion_revenue) == (25_000, 5_000, 43_000)
    assert year.expansion_revenue_share == pytest.approx(43 / 68)
    # A and D of the 4 expanded; 38,000 / 4 per customer
    assert (year.accounts_expanded, year.expansion_rate) == (2, pytest.approx(0.5))
    assert year.expansion_revenue_per_customer == pytest.approx(9_500)
    # the four opportunities identified in 2026: 2 won, 1 lost, 1 open
    assert (year.opportunities_identified, year.opportunities_won, year.opportunities_lost, year.opportunities_open) == (4, 2, 1, 1)
    assert year.win_rate == pytest.approx(0.5)
    assert year.average_deal_size == pytest.approx(17_500)  # (5,000 + 30,000) / 2
    assert year.average_cycle_days == pytest.approx(31)  # (22 + 40) / 2
    # first purchase -> first expansion: A 2025-03-01 -> 2026-02-01 = 337; D 2025-09-01 -> 2026-03-01 = 181;
    # E 2026-05-01 -> 2026-10-01 = 153
    assert year.time_to_first_expansion_days == pytest.approx((337 + 181 + 153) / 3)


def test_a_quarter_has_its_own_cohort_and_only_its_first_expansions() -> None:
    q3 = parse_period("2026-Q3")
    metrics = revenue_metrics(BOOK, PIPELINE, q3.start, q3.end)
    # on 07-01: A 15,000 + B 12,000 + D 150,000 + E 25,000 = 202,000 (C churned); A +3,000 in August
    assert (metrics.starting_arr, metrics.accounts_at_start, metrics.expansion) == (202_000, 4, 3_000)
    assert metrics.nrr == pytest.approx(205_000 / 202_000)
    assert metrics.grr == pytest.approx(1.0)
    # A's August upgrade is not its first expansion; nobody expanded for the first time in Q3
    assert metrics.time_to_first_expansion_days is None
    assert metrics.opportunities_identified == 0 and metrics.win_rate is None
    q4 = parse_period("2026-Q4")
    # E is in the Q4 cohort: its October upgrade is expansion there, and its first
    assert revenue_metrics(BOOK, [], q4.start, q4.end).expansion == 5_000
    assert revenue_metrics(BOOK, [], q4.start, q4.end).time_to_first_expansion_days == pytest.approx(153)


def test_per_segment_by_arr_at_the_start_of_the_period() -> None:
    arr = period_arr(BOOK, YEAR.start, YEAR.end, declared={"Z": 500_000})
    # E starts paying in the year: its first ARR (25,000) segments it; Z only declared its ARR
    assert arr == {"A": 10_000, "B": 20_000, "C": 30_000, "D": 120_000, "E": 25_000, "Z": 500_000}
    groups = {account: segment_for(value, SEGMENTS) for account, value in arr.items()}
    assert groups == {"A": "smb", "B": "smb", "C": "mid_market", "D": "enterprise", "E": "mid_market", "Z": "enterprise"}
    by_segment = grouped_revenue_metrics(BOOK, PIPELINE, groups, YEAR.start, YEAR.end)
    smb, mid, enterprise = by_segment["smb"], by_segment["mid_market"], by_segment["enterprise"]
    # smb: A 10,000 + B 20,000; A +8,000, B -8,000
    assert (smb.starting_arr, smb.nrr, smb.grr) == (30_000, pytest.approx(1.0), pytest.approx(22 / 30))
    # mid-market: C churns its 30,000; E is new business
    assert (mid.starting_arr, mid.nrr, mid.grr, mid.new) == (30_000, pytest.approx(0.0), pytest.approx(0.0), 25_000)
    # enterprise: D 120,000 -> 150,000 (Z books nothing: no subscription change)
    assert (enterprise.nrr, enterprise.grr) == (pytest.approx(1.25), pytest.approx(1.0))
    assert (smb.win_rate, mid.win_rate, enterprise.win_rate) == (pytest.approx(0.5), pytest.approx(0.0), pytest.approx(1.0))


def test_segment_bounds_are_inclusive_lower_bounds() -> None:
    assert [segment_for(v, SEGMENTS) for v in (0, 24_999.99, 25_000, 99_999, 100_000)] == [
        "smb",
        "smb",
        "mid_market",
        "mid_market",
        "enterprise",
    ]


def test_periods() -> None:
    assert (YEAR.start, YEAR.end) == (d("2026-01-01"), d("2027-01-01"))
    q3 = parse_period("2026-q3")
    assert (q3.label, q3.start, q3.end) == ("2026-Q3", d("2026-07-01"), d("2026-10-01"))
    q4 = parse_period("2026-Q4")
    assert q4.end == d("2027-01-01")
    month = parse_period("2026-12")
    assert (month.start, month.end) == (d("2026-12-01"), d("2027-01-01"))
    for bad in ("2026-Q5", "2026-13", "Q3", "26", "2026-1"):
        with pytest.raises(PeriodError, match="period: .* use a year"):
            parse_period(bad)
    assert [q.label for q in quarters_up_to(d("2026-02-10"), 4)] == ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"]


def test_stage_changes() -> None:
    check_stage_change(Stage.IDENTIFIED, Stage.QUALIFIED, None)
    check_stage_change(Stage.PROPOSAL, Stage.QUALIFIED, None)  # deals go back as well as forward
    check_stage_change(Stage.IDENTIFIED, Stage.WON, None)
    check_stage_change(Stage.QUALIFIED, Stage.LOST, "budget frozen")
    with pytest.raises(StageError, match="reason"):
        check_stage_change(Stage.QUALIFIED, Stage.LOST, "  ")
    with pytest.raises(StageError, match="already won"):
        check_stage_change(Stage.WON, Stage.LOST, "late")
    with pytest.raises(StageError, match="already at qualified"):
        check_stage_change(Stage.QUALIFIED, Stage.QUALIFIED, None)


def test_subscription_changes_close_opportunities() -> None:
    assert automatic_close(40_000, 52_000) == (Stage.WON, 12_000, "upgrade")  # amount = the ARR delta
    assert automatic_close(40_000, 0) == (Stage.LOST, 0.0, "churned")
    assert automatic_close(40_000, 30_000) is None  # a downgrade leaves it open
    assert automatic_close(0, 30_000) is None  # a first purchase or comeback is not an expansion
    assert automatic_close(40_000, 40_000) is None


SIGNAL_BOOK = [
    *BOOK,
    ArrChange("G", d("2025-02-01"), 0, 8_000),
    ArrChange("G", d("2026-06-15"), 8_000, 10_000),  # never alerted, expands in the year
    ArrChange("H", d("2025-04-01"), 0, 5_000),
    ArrChange("H", d("2027-01-15"), 5_000, 9_000),  # never alerted, expands only after the year
]
ALERTS = [
    AlertFact("A", "usage_threshold_crossed", "immediate", d("2026-01-10")),  # A expands 02-01: 22 days, a hit
    AlertFact("A", "usage_threshold_crossed", "immediate", d("2026-07-20")),  # only the first alert per account counts
    AlertFact("B", "usage_threshold_crossed", "short_term", d("2026-03-01")),  # B never expands: a miss
    AlertFact("D", "new_domain_user", "immediate", d("2026-01-20")),  # D expands 03-01: 40 days
    AlertFact("D", "usage_threshold_crossed", "immediate", d("2026-02-15")),  # 14 days
    AlertFact("E", "usage_threshold_crossed", "short_term", d("2026-12-01")),  # E's upgrade was 10-01, before: a miss
    AlertFact("C", "usage_threshold_crossed", "low", d("2025-12-15")),  # before the year: not counted, C not alerted
]


def test_expansions_are_upgrades_of_paying_accounts() -> None:
    assert expansions_of(SIGNAL_BOOK) == [
        ("A", d("2026-02-01")),
        ("D", d("2026-03-01")),
        ("A", d("2026-08-01")),
        ("E", d("2026-10-01")),
        ("G", d("2026-06-15")),
        ("H", d("2027-01-15")),
    ]


def test_signal_precision_and_lift_per_type_and_tier() -> None:
    population = active_accounts(SIGNAL_BOOK, YEAR.start, YEAR.end)
    assert population == {"A", "B", "C", "D", "E", "G", "H"}
    rows = {(r.signal_type, r.tier): r for r in signal_metrics(ALERTS, SIGNAL_BOOK, population, YEAR.start, YEAR.end, 90)}
    # never alerted in 2026: C, G, H; only G expanded within the year (H's upgrade is in 2027) -> 1/3
    assert [r.base_rate for r in rows.values()] == [pytest.approx(1 / 3)] * len(rows)
    usage_immediate = rows[("usage_threshold_crossed", "immediate")]
    assert (usage_immediate.alerted, usage_immediate.expanded, usage_immediate.precision) == (2, 2, 1.0)  # A, D
    assert usage_immediate.lift == pytest.approx(3.0)
    usage_short = rows[("usage_threshold_crossed", "short_term")]
    assert (usage_short.alerted, usage_short.expanded, usage_short.precision, usage_short.lift) == (2, 0, 0.0, 0.0)  # B, E
    usage = rows[("usage_threshold_crossed", ALL)]
    assert (usage.alerted, usage.expanded, usage.lift) == (4, 2, pytest.approx(1.5))  # 2/4 over 1/3
    domain = rows[("new_domain_user", "immediate")]
    assert (domain.alerted, domain.expanded, domain.lift) == (1, 1, pytest.approx(3.0))
    immediate = rows[(ALL, "immediate")]
    assert (immediate.alerted, immediate.expanded) == (2, 2)  # A and D, each from its first immediate alert
    overall = rows[(ALL, ALL)]
    assert (overall.alerted, overall.expanded, overall.precision) == (4, 2, 0.5)
    assert ("usage_threshold_crossed", "low") not in rows  # C's alert was before the year


def test_a_narrower_window_misses_the_slower_expansions() -> None:
    population = active_accounts(SIGNAL_BOOK, YEAR.start, YEAR.end)
    rows = {(r.signal_type, r.tier): r for r in signal_metrics(ALERTS, SIGNAL_BOOK, population, YEAR.start, YEAR.end, 30)}
    assert rows[("new_domain_user", "immediate")].expanded == 0  # 40 days > 30
    assert rows[("usage_threshold_crossed", "immediate")].expanded == 2  # 22 and 14 days
    assert rows[(ALL, "immediate")].expanded == 1  # D's first immediate alert was the domain one, 40 days out


def test_an_alert_near_the_end_of_the_period_is_judged_on_the_window_after_it() -> None:
    late = [AlertFact("H", "usage_growth", "short_term", d("2026-12-20"))]  # H upgrades 2027-01-15: 26 days later
    population = active_accounts(SIGNAL_BOOK, YEAR.start, YEAR.end)
    rows = {(r.signal_type, r.tier): r for r in signal_metrics(late, SIGNAL_BOOK, population, YEAR.start, YEAR.end, 90)}
    assert rows[("usage_growth", "short_term")].expanded == 1
    # never alerted now: A, B, C, D, E, G; expanded in the year: A, D, E, G -> 4/6
    assert rows[(ALL, ALL)].base_rate == pytest.approx(4 / 6)


def test_no_alerts_still_reports_the_base_rate() -> None:
    population = active_accounts(SIGNAL_BOOK, YEAR.start, YEAR.end)
    (row,) = signal_metrics([], SIGNAL_BOOK, population, YEAR.start, YEAR.end, 90)
    # A, D, E, G of the 7 expanded in 2026
    assert (row.signal_type, row.tier, row.alerted, row.precision, row.lift) == (ALL, ALL, 0, None, None)
    assert row.base_rate == pytest.approx(4 / 7)


def test_the_summary_says_pipeline_closed_deals_and_the_nrr_trend() -> None:
    metrics = revenue_metrics(BOOK, PIPELINE, YEAR.start, YEAR.end)
    text = summary_text(
        d("2026-12-28"),
        PipelineSnapshot({"identified": 3, "qualified": 1, "proposal": 0}, 42_000, 2, 35_000, 1),
        metrics,
        "2026",
        [("2026-Q3", 1.0149), ("2026-Q4", None)],
        signal_metrics(ALERTS, SIGNAL_BOOK, active_accounts(SIGNAL_BOOK, YEAR.start, YEAR.end), YEAR.start, YEAR.end, 90),
    )
    assert "Active opportunities: *4* (3 identified, 1 qualified, 0 proposal), $42,000 estimated" in text
    assert "*2 won* for $35,000, 1 lost" in text
    assert "NRR 100.0%, GRR 78.9%" in text
    assert "NRR trend: 2026-Q3 101.5% → 2026-Q4 n/a" in text
    assert "new_domain_user 100.0% (1/1, lift 3.0×)" in text
