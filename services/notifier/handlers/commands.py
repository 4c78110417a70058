"""What the notifier does when asked: owners' actions from the actions API and Slack buttons (applied to the
outbox at once, then published on alert-actions for scoring), outreach and opt-outs, the digest, and replaying
dead letters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from services.notifier.adapters.outbox import Outbox
from services.notifier.domain.actions import Closing
from services.notifier.domain.messages import digest_text
from shared.kafka import AccountKeyedPublisher
from shared.schemas import SNOOZE_WITHOUT_DATE, ActionKind, Alert, AlertAction, utcnow


class AlertCommands:
    """close/snooze raise UnknownAlert (adapters/outbox.py) for an alert that has not reached the notifier."""

    def __init__(self, outbox: Outbox, publisher: AccountKeyedPublisher, post_digest: Callable[[str], Awaitable[None]]) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._post_digest = post_digest

    async def close(self, alert_id: str, status: Closing, reason: str | None, actor: str) -> dict[str, str]:
        """Done or dismissed; scoring moves the account's open opportunity when the action reaches it."""
        account_id = await self._outbox.apply_action(alert_id, status, reason, actor)
        await self._publish(alert_id, account_id, status, reason, actor)
        return {"alert_id": alert_id, "account_id": account_id, "status": status}

    async def snooze(self, alert_id: str, until: datetime | None, reason: str | None, actor: str) -> dict[str, str]:
        """The account's alerts wait for the digest until `until` (a button's week when not given)."""
        until = until or utcnow() + SNOOZE_WITHOUT_DATE
        account_id = await self._outbox.apply_action(alert_id, "snoozed", reason, actor, until)
        await self._publish(alert_id, account_id, "snoozed", reason, actor, until)
        return {"account_id": account_id, "snoozed_until": until.isoformat()}

    async def _publish(
        self,
        alert_id: str,
        account_id: str,
        action: ActionKind,
        reason: str | None,
        actor: str,
        snoozed_until: datetime | None = None,
    ) -> None:
        await self._publisher.publish(
            AlertAction.clicked(
                alert_id=alert_id,
                account_id=account_id,
                action=action,
                reason=reason,
                actor=actor,
                snoozed_until=snoozed_until,
                origin="notifier",
            )
        )

    async def log_outreach(self, account_id: str, actor: str) -> int:
        """Returns the outreaches logged for the account this quarter."""
        return await self._outbox.log_outreach(account_id, actor)

    async def set_opted_out(self, account_id: str, opted_out: bool, reason: str | None = None) -> None:
        values: dict[str, Any] = {"opted_out": opted_out}
        if opted_out:
            values["reason"] = reason
        await self._outbox.set_attention(account_id, **values)

    async def send_digest(self) -> int:
        """One message with every held alert; returns how many went out."""

        async def send(alerts: list[Alert]) -> None:
            await self._post_digest(digest_text(alerts))

        return await self._outbox.digest(send)


async def replay_dead_letters(outbox: Outbox, letters: list[dict[str, Any]]) -> int:
    """Make each delivery pending again; ones since delivered are left alone. Returns how many were revived."""
    revived = 0
    for letter in letters:
        if "alert" in letter and await outbox.revive(letter["alert"], letter["channel"]):
            revived += 1
    return revived
