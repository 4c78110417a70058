"""An expansion opportunity's stages and the moves between them: by an owner, by an alert action, by billing."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Stage(StrEnum):
    IDENTIFIED = "identified"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    WON = "won"
    LOST = "lost"


OPEN_STAGES = (Stage.IDENTIFIED, Stage.QUALIFIED, Stage.PROPOSAL)
CLOSED_STAGES = (Stage.WON, Stage.LOST)


class StageError(ValueError):
    """A stage change that cannot happen; the message says why."""


def check_stage_change(current: Stage, target: Stage, reason: str | None) -> None:
    """Open stages move freely among themselves (deals go back as well as forward); won and lost are final."""
    if current in CLOSED_STAGES:
        raise StageError(f"stage: the opportunity is already {current.value}; a closed opportunity does not reopen")
    if target == current:
        raise StageError(f"stage: the opportunity is already at {current.value}")
    if target == Stage.LOST and not (reason and reason.strip()):
        raise StageError("reason: say why the opportunity was lost")


def outcome_of(stage: str) -> Literal["open", "won", "lost"]:
    if stage == Stage.WON:
        return "won"
    if stage == Stage.LOST:
        return "lost"
    return "open"


def automatic_close(arr_before: float, arr_after: float) -> tuple[Stage, float, str] | None:
    """What a subscription change does to the account's open opportunity: an upgrade wins it (amount =
    the ARR delta), a churn loses it; anything else leaves it open."""
    if 0 < arr_before < arr_after:
        return Stage.WON, arr_after - arr_before, "upgrade"
    if arr_after <= 0 < arr_before:
        return Stage.LOST, 0.0, "churned"
    return None


def alert_action_move(stage: Stage, action: str, reason: str | None) -> tuple[Stage, str] | None:
    """Where an owner's action on an alert moves the account's open opportunity, and why: `done` (the owner reached
    out) qualifies an identified one; `dismissed` loses it with the dismissal's reason; anything else leaves it."""
    if action == "done" and stage == Stage.IDENTIFIED:
        return Stage.QUALIFIED, "owner reached out"
    if action == "dismissed":
        return Stage.LOST, f"alert dismissed: {reason or 'no reason given'}"
    return None
