"""The dedupe claim's pure rules: which rows may be claimed again, and how a request's ids split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ingest.domain.claims import claim_outcome, claimable

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
WINDOW_START, LEASE_START = NOW - timedelta(days=7), NOW - timedelta(seconds=30)


def test_a_produced_id_within_the_window_is_never_claimed_again() -> None:
    assert not claimable(True, NOW - timedelta(days=1), WINDOW_START, LEASE_START)
    assert not claimable(True, NOW - timedelta(seconds=1), WINDOW_START, LEASE_START)


def test_an_unmarked_claim_is_taken_over_only_once_its_lease_ran_out() -> None:
    assert not claimable(False, NOW - timedelta(seconds=5), WINDOW_START, LEASE_START)  # its request may still be producing
    assert claimable(False, NOW - timedelta(seconds=31), WINDOW_START, LEASE_START)  # that request failed or its process died


def test_ids_past_the_window_start_a_new_one() -> None:
    assert claimable(True, NOW - timedelta(days=8), WINDOW_START, LEASE_START)


def test_a_request_splits_into_claimed_duplicates_and_busy() -> None:
    claimed, duplicates, busy = claim_outcome(["a", "b", "c", "d"], claimed=["c", "a"], produced=["b"])
    assert claimed == ["a", "c"]  # request order
    assert duplicates == {"b"}
    assert busy == {"d"}  # held by another request: neither ours to produce nor safe to call a duplicate


def test_an_id_we_claimed_is_never_a_duplicate() -> None:
    claimed, duplicates, busy = claim_outcome(["a"], claimed=["a"], produced=["a"])
    assert (claimed, duplicates, busy) == (["a"], set(), set())
