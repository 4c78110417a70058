"""OffsetGuard: which input records reach the rules, so a state never records offsets past a lost record."""

from __future__ import annotations

from services.signals.adapters.offsets import Admission, OffsetGuard

P, Q = "usage-events[0]", "usage-events[1]"


def test_the_first_record_of_an_assignment_needs_the_committed_position() -> None:
    guard: OffsetGuard[str] = OffsetGuard()
    assert guard.admit(P, 5) is Admission.UNKNOWN
    guard.start(P, 5)
    assert [guard.admit(P, offset) for offset in (5, 6, 7)] == [Admission.APPLY] * 3
    assert guard.positions({P}) == {P: 8}


def test_a_copy_of_an_applied_record_is_stale() -> None:
    guard: OffsetGuard[str] = OffsetGuard()
    guard.start(P, 0)
    guard.admit(P, 0), guard.admit(P, 1)
    assert guard.admit(P, 1) is Admission.STALE
    assert guard.admit(P, 0) is Admission.STALE
    assert guard.positions({P}) == {P: 2}


def test_a_hole_waits_for_the_missing_record_and_everything_after_it_comes_again_in_order() -> None:
    guard: OffsetGuard[str] = OffsetGuard()
    guard.start(P, 10)
    assert guard.admit(P, 10) is Admission.APPLY
    assert guard.admit(P, 13) is Admission.HOLE
    assert guard.go_back(P) == 11
    # what was fetched before the seek still arrives: it waits, and nothing moves the position
    assert [guard.admit(P, offset) for offset in (14, 15)] == [Admission.WAIT, Admission.WAIT]
    assert guard.positions({P}) == {P: 11}
    assert [guard.admit(P, offset) for offset in (11, 12, 13, 14)] == [Admission.APPLY] * 4
    assert guard.positions({P}) == {P: 15}


def test_a_gap_the_log_has_is_accepted() -> None:
    guard: OffsetGuard[str] = OffsetGuard()
    guard.start(P, 0)
    assert guard.admit(P, 4) is Admission.HOLE
    guard.accept_gap(P, 4)
    assert guard.admit(P, 5) is Admission.APPLY
    assert guard.positions({P}) == {P: 6}


def test_partitions_are_independent_and_a_reset_forgets_them_all() -> None:
    guard: OffsetGuard[str] = OffsetGuard()
    guard.start(P, 0), guard.start(Q, 100)
    assert guard.admit(Q, 100) is Admission.APPLY and guard.admit(P, 0) is Admission.APPLY
    assert guard.admit(P, 2) is Admission.HOLE
    guard.go_back(P)
    assert guard.admit(Q, 101) is Admission.APPLY, "a hole in one partition holds only that partition"
    assert guard.positions({P, Q, "unassigned"}) == {P: 1, Q: 102}
    guard.reset()
    assert guard.admit(P, 1) is Admission.UNKNOWN and guard.admit(Q, 102) is Admission.UNKNOWN
