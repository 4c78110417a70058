"""An account's state as the worker keeps it, and its JSON in the table and changelog.

msgspec Structs, not models: every event mutates them, so attribute writes must cost nothing, and the table's JSON
is decoded (with its types checked) and encoded in C, leaving out every field still at its default."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

from services.signals.domain.dedupe import RecentIds


class MetricUsage(msgspec.Struct, omit_defaults=True):
    used: float = 0.0
    level_at: datetime | None = None  # gauges: event time of the level held, so older ones lose
    fired: list[float] = []  # thresholds already signalled this period
    arm_generation: int = 0  # bumped when thresholds re-arm within a period
    sustained_fired: bool = False


class PeriodUsage(msgspec.Struct, omit_defaults=True):
    """A closed period's figure for one metric, and the limit it was measured against."""

    used: float
    limit: float | None = None


class AccountState(msgspec.Struct, omit_defaults=True):
    account_id: str
    limits: dict[str, float] = {}
    domains: list[str] = []
    billing_anchor: date | None = None
    period: str | None = None
    usage: dict[str, MetricUsage] = {}
    history: dict[str, dict[str, PeriodUsage]] = {}  # closed periods: label -> metric
    weekly: dict[str, dict[str, float]] = {}  # metric -> week -> consumption
    growth_fired: list[str] = []  # 'metric@week' already signalled
    users: dict[str, str | None] = {}  # active user id -> team (the seats)
    teams: list[str] = []
    seen_domains: list[str] = []
    features: list[str] = []
    feature_tries: dict[str, list[datetime]] = {}  # gated feature -> recent tries
    features_fired: list[str] = []  # premium interest signalled this period
    integrations: list[str] = []
    recent_event_ids: RecentIds = msgspec.field(default_factory=RecentIds)
    # input topic[partition] -> offset of the last record applied: what a replay after a crash skips
    source_offsets: dict[str, int] = {}


def empty_state(account_id: str) -> AccountState:
    return AccountState(account_id=account_id)


def _encode_hook(value: object) -> object:
    if isinstance(value, RecentIds):
        return value.stored()
    raise TypeError(f"an account state cannot hold a {type(value).__name__}")


def _decode_hook(kind: type, value: object) -> object:
    if kind is RecentIds:
        return RecentIds.from_stored(value)
    raise NotImplementedError(kind)


_STATE_ENCODER = msgspec.json.Encoder(enc_hook=_encode_hook)
_STATE_DECODER = msgspec.json.Decoder(AccountState, dec_hook=_decode_hook)


def load_state(stored: bytes | dict[str, Any]) -> AccountState:
    """From the table's JSON (or its parsed form), type-checked; states written before the hashed window are read."""
    if isinstance(stored, bytes):
        return _STATE_DECODER.decode(stored)
    return msgspec.convert(stored, AccountState, dec_hook=_decode_hook)


def encode_state(state: AccountState) -> bytes:
    """The JSON the table and its changelog hold, encoded once: the table keeps these bytes as they are."""
    return _STATE_ENCODER.encode(state)


def dump_state(state: AccountState) -> dict[str, Any]:
    """Every field of the state, those at their defaults too (the stored JSON leaves them out), as JSON values: what
    the state endpoint shows."""
    return _every_field(state)


def _every_field(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return {name: _every_field(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, dict):
        return {key: _every_field(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_every_field(item) for item in value]
    return msgspec.to_builtins(value, enc_hook=_encode_hook)


def team_key(team: str | None) -> str | None:
    """How the state names a team: `Data Science ` and `data science` are one team."""
    return team.strip().casefold() if team else None
