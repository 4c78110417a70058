"""A small book of accounts over 2026, every figure worked out by hand in the comments."""

from datetime import UTC, datetime

import pytest

from services.scoring.outcomes.domain.revenue import (
    ArrChange,
    Opportunity,
    classify,
    ledger,
    pipeline_metrics,
    signal_precision,
    time_to_first_expansion_days,
)


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BOOK = [
    # the cohort paying on 2026-01-01: A 10,000 + B 20,000 + C 30,000 + D 40,000 = 100,000 over 4 accounts
    ArrChange("A", d("2025-03-01"), 0, 10_000),
    ArrChange("B", d("2025-05-01"), 0, 20_000),
    ArrChange("C", d("2025-06-01"), 0, 30_000),
    ArrChange("D", d("2025-09-01"), 0, 40_000),
    # 2026
    ArrChange("A", d("2026-02-01"), 10_000, 15_000),  # expansion +5,000
    ArrChange("D", d("2026-03-01"), 40_000, 50_000),  # expansion +10,000
    ArrChange("B", d("2026-04-01"), 20_000, 12_000),  # contraction 8,000
    ArrChange("E", d("2026-05-01"), 0, 25_000),  # new logo 25,000
    ArrChange("C", d("2026-06-01"), 30_000, 0),  # churn 30,000
    ArrChange("A", d("2026-08-01"), 15_000, 18_000),  # expansion +3,000
    ArrChange("E", d("2026-10-01"), 25_000, 30_000),  # a new logo's upgrade: +5,000, not in the cohort
]


def test_movements_are_classified_by_the_arr_delta() -> None:
    assert [classify(c) for c in BOOK[4:]] == ["expansion", "expansion", "contraction", "new", "churn", "expansion", "expansion"]


def test_the_year_line_by_line() -> None:
    year = ledger(BOOK, d("2026-01-01"), d("2027-01-01"))
    assert (year.starting_arr, year.accounts_at_start) == (100_000, 4)
    assert year.expansion == 18_000  # 5,000 + 10,000 + 3,000
    assert year.contraction == 8_000
    assert year.churn == 30_000
    assert (year.new, year.new_logo_expansion) == (25_000, 5_000)
    # NRR = (100,000 + 18,000 - 8,000 - 30,000) / 100,000 = 80,000 / 100,000
    assert year.nrr == pytest.approx(0.80)
    # GRR = (100,000 - 30,000 - 8,000) / 100,000
    assert year.grr == pytest.approx(0.62)
    # expansion revenue rate = (18,000 + 5,000) / (25,000 + 18,000 + 5,000) = 23,000 / 48,000
    assert year.expansion_revenue_rate == pytest.approx(23_000 / 48_000)
    # A and D expanded, of 4 accounts at the start
    assert year.expansion_rate == pytest.approx(0.5)
    assert year.expansion_revenue_per_customer == pytest.approx(4_500)


def test_quarters_have_their_own_cohorts() -> None:
    q1 = ledger(BOOK, d("2026-01-01"), d("2026-04-01"))
    # 100,000 + 5,000 + 10,000 (the D upgrade on 03-01 is inside Q1)
    assert (q1.nrr, q1.grr) == (pytest.approx(1.15), pytest.approx(1.0))
    q3 = ledger(BOOK, d("2026-07-01"), d("2026-10-01"))
    # on 07-01: A 15,000 + B 12,000 + D 50,000 + E 25,000 = 102,000 (C churned); +3,000 in August
    assert (q3.starting_arr, q3.accounts_at_start) == (102_000, 4)
    assert q3.nrr == pytest.approx(105_000 / 102_000)
    q4 = ledger(BOOK, d("2026-10-01"), d("2027-01-01"))
    # E is in the Q4 cohort, so its October upgrade is expansion there
    assert (q4.expansion, q4.new_logo_expansion) == (5_000, 0)


def test_an_empty_period_has_no_ratios() -> None:
    empty = ledger(BOOK, d("2020-01-01"), d("2020-04-01"))
    assert (empty.nrr, empty.grr, empty.expansion_rate, empty.expansion_revenue_rate) == (None, None, None, None)


def test_time_to_first_expansion() -> None:
    # A: 2025-03-01 -> 2026-02-01 = 337 days; D: 2025-09-01 -> 2026-03-01 = 181; E: 2026-05-01 -> 2026-10-01 = 153
    assert time_to_first_expansion_days(BOOK) == pytest.approx((337 + 181 + 153) / 3)


def test_pipeline_win_rate_deal_size_and_cycle() -> None:
    metrics = pipeline_metrics(
        [
            Opportunity("A", d("2026-01-10"), "won", d("2026-02-01"), 5_000),  # 22 days
            Opportunity("D", d("2026-01-20"), "won", d("2026-03-01"), 10_000),  # 40 days
            Opportunity("B", d("2026-03-01"), "lost", d("2026-04-01")),
            Opportunity("C", d("2026-05-01"), "open"),
        ]
    )
    assert (metrics.identified, metrics.won, metrics.lost) == (4, 2, 1)
    assert metrics.win_rate == pytest.approx(0.5)
    assert metrics.average_deal_size == pytest.approx(7_500)
    assert metrics.average_cycle_days == pytest.approx(31)


def test_signal_precision_and_lift_against_the_never_alerted_base_rate() -> None:
    alerts = [
        ("usage_threshold_crossed", "A", d("2026-01-10")),  # A expands 02-01: 22 days later, a hit
        ("usage_threshold_crossed", "A", d("2026-01-25")),  # only the first alert per account counts
        ("usage_threshold_crossed", "B", d("2026-03-01")),  # B never expands: a miss
        ("usage_threshold_crossed", "D", d("2026-01-15")),  # D expands 03-01: 45 days later, a hit
        ("new_domain_user", "D", d("2026-01-20")),  # 40 days: a hit
    ]
    expansions = [("A", d("2026-02-01")), ("A", d("2026-08-01")), ("D", d("2026-03-01")), ("E", d("2026-10-01"))]
    results = {r.key: r for r in signal_precision(alerts, expansions, ["A", "B", "C", "D", "E", "F"], window_days=60)}
    usage = results["usage_threshold_crossed"]
    assert (usage.alerted, usage.expanded) == (3, 2)
    assert usage.precision == pytest.approx(2 / 3)
    # never alerted: C, E, F; only E expanded
    assert usage.base_rate == pytest.approx(1 / 3)
    assert usage.lift == pytest.approx(2.0)
    domain = results["new_domain_user"]
    assert (domain.alerted, domain.expanded, domain.lift) == (1, 1, pytest.approx(3.0))
    narrow = {r.key: r for r in signal_precision(alerts, expansions, ["A", "B", "C", "D", "E", "F"], window_days=30)}
    assert narrow["usage_threshold_crossed"].expanded == 1  # D's 45 days fall outside 30
