"""What the notifier does with each record it consumes, by record type (HANDLERS): an alert goes into the outbox
with its deliveries; an action made in the console is applied to the outbox. entrypoints/kafka.py parses and
dispatches."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.notifier.adapters.outbox import Outbox, UnknownAlert
from services.notifier.domain.actions import applies_here, snooze_end
from services.notifier.domain.config import SlackRoutingConfig
from services.notifier.domain.fatigue import Route
from services.notifier.domain.routing import delivery_channels
from shared.schemas import Alert, AlertAction, Contract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordContext:
    """What the record handlers are given: the outbox, the channels to route between and the sender to wake."""

    outbox: Outbox
    routing: SlackRoutingConfig
    channel_names: tuple[str, ...]
    wake_sender: Callable[[], None]


async def on_alert(context: RecordContext, alert: Alert) -> None:
    """One transaction stores the alert, its fatigue decision and its deliveries; a redelivered alert changes nothing."""
    result = await context.outbox.store(alert, delivery_channels(alert, context.routing, context.channel_names))
    if result.decision is not None and result.decision.route != Route.PING:
        log.info("alert held", extra={"alert_id": alert.alert_id, "route": result.decision.route, "reason": result.decision.reason})
    if result.stored:
        context.wake_sender()


async def on_alert_action(context: RecordContext, action: AlertAction) -> None:
    """The console's actions reach the outbox here (the console waits to see them there); an action on an alert the
    notifier never stored is logged and skipped, since waiting would block the partition for good."""
    if not applies_here(action):
        return
    snoozed_until = snooze_end(action) if action.action == "snoozed" else None
    try:
        await context.outbox.apply_action(action.alert_id, action.action, action.reason, action.actor, snoozed_until)
    except UnknownAlert:
        log.warning(
            "alert action on an unknown alert skipped",
            extra={"alert_id": action.alert_id, "account_id": action.account_id, "action": action.action, "action_id": action.action_id},
        )
        return
    log.info("alert action applied", extra={"alert_id": action.alert_id, "action": action.action, "origin": action.origin})


# each handler takes the record type it is keyed by
RecordHandler = Callable[[RecordContext, Any], Awaitable[None]]
HANDLERS: dict[type[Contract], RecordHandler] = {Alert: on_alert, AlertAction: on_alert_action}
