"""Every expansion signal type, declared once: its name on the wire, and what the other services need to know of it
(is it a usage reading, which sales motion it starts, does it wait for the digest, how to say what it saw).

The wire schema (`Signal.type`), the config (`notifier.fatigue.digest_signals`), the signals rules (one detector
per type, services/signals/domain/rules.py), scoring's routing and the console read this table; a unit test holds
every type to having a detector. The README's "Adding a signal type" recipe starts here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal


class SignalType(StrEnum):
    USAGE_THRESHOLD_CROSSED = "usage_threshold_crossed"
    USAGE_SUSTAINED_HIGH = "usage_sustained_high"
    SEAT_THRESHOLD_CROSSED = "seat_threshold_crossed"
    NEW_DOMAIN_USER = "new_domain_user"
    NEW_TEAM_ADOPTION = "new_team_adoption"
    PREMIUM_FEATURE_INTEREST = "premium_feature_interest"
    USAGE_GROWTH = "usage_growth"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def humanize(name: str) -> str:
    """`usage_threshold_crossed` -> `Usage threshold crossed`."""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _usage_against_limit(signal: Mapping[str, Any]) -> str | None:
    value, limit, metric = signal.get("value"), signal.get("limit"), signal.get("metric") or "usage"
    if signal.get("utilization") is None:
        return None
    amounts = f" ({value:,.0f} of {limit:,.0f})" if isinstance(value, int | float) and isinstance(limit, int | float) else ""
    return f"{metric} at {percent(signal['utilization'])} of its limit{amounts}"


def _growth(signal: Mapping[str, Any]) -> str | None:
    if signal.get("growth") is None:
        return None
    return f"{signal.get('metric') or 'usage'} grew {percent(signal['growth'])} week over week"


def _premium_tries(signal: Mapping[str, Any]) -> str:
    return f"tried {signal.get('feature') or 'a premium feature'} {signal.get('tries') or ''} times".replace("  ", " ")


@dataclass(frozen=True)
class SignalKind:
    type: SignalType
    summary: Callable[[Mapping[str, Any]], str | None]  # what the signal saw, from its payload (None: too little to say)
    motion: Literal["upsell", "cross_sell"] = "upsell"  # the seeds' routing: cross-sell goes to the AE
    usage_reading: bool = False  # carries metric, value and limit: scoring keeps it as the metric's usage
    usage_activity: bool = False  # counts as recent usage activity in the score's product-usage part
    digest_by_default: bool = False  # low urgency: waits for the owner's digest unless configured otherwise


SIGNAL_KINDS: dict[SignalType, SignalKind] = {
    kind.type: kind
    for kind in (
        SignalKind(SignalType.USAGE_THRESHOLD_CROSSED, _usage_against_limit, usage_reading=True, usage_activity=True),
        SignalKind(SignalType.USAGE_SUSTAINED_HIGH, _usage_against_limit, usage_reading=True, usage_activity=True),
        SignalKind(SignalType.SEAT_THRESHOLD_CROSSED, _usage_against_limit, usage_reading=True),
        SignalKind(SignalType.NEW_DOMAIN_USER, lambda s: f"a user from a new domain: {s.get('domain') or 'unknown'}"),
        SignalKind(
            SignalType.NEW_TEAM_ADOPTION,
            lambda s: f"a new team adopted it: {s.get('team') or 'unknown'}",
            motion="cross_sell",
            digest_by_default=True,
        ),
        SignalKind(SignalType.PREMIUM_FEATURE_INTEREST, _premium_tries, motion="cross_sell", digest_by_default=True),
        SignalKind(SignalType.USAGE_GROWTH, _growth, usage_activity=True, digest_by_default=True),
    )
}


def kinds_where(predicate: Callable[[SignalKind], bool]) -> frozenset[SignalType]:
    return frozenset(kind.type for kind in SIGNAL_KINDS.values() if predicate(kind))


def summary_of(signal: Mapping[str, Any]) -> str:
    """What a stored signal saw, in one line; a type this version does not know (or a payload too thin to say more)
    is named as it is."""
    kind = str(signal.get("type", ""))
    try:
        said = SIGNAL_KINDS[SignalType(kind)].summary(signal)
    except ValueError:
        said = None
    return said or humanize(kind)
