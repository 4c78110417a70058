"""The signals service layer: decode a record, apply it to the account's state, encode what it emits.

Kept free of Faust so it is unit-tested directly; the Faust agent only moves bytes and state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from services.signals.domain import AccountState, Rules, apply_account_update, apply_event, empty_state
from shared.config import RadarConfig
from shared.schemas import EVENT_ADAPTER, AccountUpdate, Signal

log = logging.getLogger(__name__)


def rules_from_config(config: RadarConfig) -> Rules:
    return Rules(
        thresholds=tuple(config.signals.usage_thresholds),
        recent_event_ids=config.signals.recent_event_ids_per_account,
    )


@dataclass
class Outcome:
    state: dict[str, Any] | None
    signals: list[Signal] = field(default_factory=list)
    error: str | None = None


def handle_record(kind: str, key: bytes | None, value: bytes | None, stored: dict[str, Any] | None, rules: Rules) -> Outcome:
    """`kind` is "event" or "account"; a record that cannot be read is reported, never raised."""
    try:
        if value is None:
            return Outcome(stored, error="empty record (tombstone) ignored")
        if kind == "account":
            update = AccountUpdate.model_validate_json(value)
            state = AccountState.model_validate(stored) if stored else empty_state(update.account_id)
            signals = apply_account_update(state, update, rules)
        else:
            event = EVENT_ADAPTER.validate_python(orjson.loads(value))
            state = AccountState.model_validate(stored) if stored else empty_state(event.account_id)
            signals = apply_event(state, event, rules)
    except (ValidationError, orjson.JSONDecodeError) as exc:
        where = key.decode(errors="replace") if key else "?"
        return Outcome(stored, error=f"unreadable {kind} record for key {where!r}: {str(exc)[:300]}")
    return Outcome(state.model_dump(mode="json"), signals)
