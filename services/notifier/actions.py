"""What an owner can do with an alert (done, snooze, dismiss): one place for the notifier's actions API, its
Slack buttons and the web console, so a click has the same effect wherever it is made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.outbox import Outbox
from services.scoring.outcomes_service import apply_alert_action
from shared.schemas import utcnow

BUTTON_SNOOZE = timedelta(days=7)  # what a snooze button (Slack's, the console's) gives without a date


@dataclass(frozen=True)
class AlertActions:
    """Raises UnknownAlert (services/notifier/outbox.py) for an alert that has not reached the notifier."""

    outbox: Outbox
    sessions: async_sessionmaker[AsyncSession]  # the shared database the account's opportunity lives in

    async def close(self, alert_id: str, status: str, reason: str | None, actor: str) -> dict[str, str]:
        """Done or dismissed; the account's open opportunity follows (done: qualified; dismissed: lost)."""
        account_id = await self.outbox.close(alert_id, status, reason, actor)
        stage = await apply_alert_action(self.sessions, account_id, status, reason, actor)
        return {"alert_id": alert_id, "account_id": account_id, "status": status, **({"opportunity_stage": stage} if stage else {})}

    async def snooze(self, alert_id: str, until: datetime | None = None, reason: str | None = None) -> dict[str, str]:
        """The account's alerts wait for the digest until `until` (a button's week when not given)."""
        account_id = await self.outbox.alert_account(alert_id)
        until = until or utcnow() + BUTTON_SNOOZE
        await self.outbox.set_attention(account_id, snoozed_until=until, reason=reason)
        return {"account_id": account_id, "snoozed_until": until.isoformat()}
