"""What an owner's action on an alert (done, dismissed, snoozed) means for the notifier, wherever it was clicked."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shared.schemas import SNOOZE_WITHOUT_DATE, AlertAction

Closing = Literal["done", "dismissed"]


def applies_here(action: AlertAction) -> bool:
    """The notifier applied its own actions (API, Slack buttons) before publishing them; the console's it applies
    on receipt."""
    return action.origin == "console"


def snooze_end(action: AlertAction) -> datetime:
    """Until when a snooze holds: its own date, else a button's week from the click (the same on every replay)."""
    return action.snoozed_until or action.at + SNOOZE_WITHOUT_DATE
