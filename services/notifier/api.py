"""The notifier's HTTP entrypoint: ops endpoints, the actions API (bearer key, "read" scope) and Slack's
interactivity endpoint (request signature checked with the app's signing secret, 5-minute replay window)."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from services.notifier.actions import AlertActions
from services.notifier.bootstrap import NotifierRuntime
from services.notifier.outbox import UnknownAlert
from shared.auth import Principal, require_scope
from shared.db import sessionmaker
from shared.observability import service_app


class Snooze(BaseModel):
    until: datetime = Field(description="alerts for the account wait for the digest until then (timezone-aware)")
    reason: str | None = Field(default=None, max_length=1000)


class Dismiss(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="why the alert is not worth acting on")


class OptOut(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


def create_app(runtime: NotifierRuntime) -> FastAPI:
    app = service_app("notifier", runtime)
    actions = AlertActions(runtime.outbox, sessionmaker(runtime.engine))

    async def actor(request: Request) -> Principal:
        return await require_scope(request, runtime.keys, "read")

    async def snooze_alert(alert_id: str, until: datetime | None, reason: str | None) -> dict[str, str]:
        try:
            return await actions.snooze(alert_id, until, reason)
        except UnknownAlert:
            raise HTTPException(404, f"no alert {alert_id!r} has reached the notifier") from None

    async def close(alert_id: str, status: str, reason: str | None, who: str) -> dict[str, str]:
        try:
            return await actions.close(alert_id, status, reason, who)
        except UnknownAlert:
            raise HTTPException(404, f"no alert {alert_id!r} has reached the notifier") from None

    @app.post("/v1/alerts/{alert_id}/snooze")
    async def snooze(alert_id: str, body: Snooze, principal: Principal = Depends(actor)) -> dict[str, str]:
        if body.until.tzinfo is None:
            raise HTTPException(422, "until: give a timezone, e.g. 2026-12-01T09:00:00Z")
        return await snooze_alert(alert_id, body.until, body.reason)

    @app.post("/v1/alerts/{alert_id}/dismiss")
    async def dismiss(alert_id: str, body: Dismiss, principal: Principal = Depends(actor)) -> dict[str, str]:
        return await close(alert_id, "dismissed", body.reason, principal.name)

    @app.post("/v1/alerts/{alert_id}/done")
    async def done(alert_id: str, principal: Principal = Depends(actor)) -> dict[str, str]:
        """The owner reached out: the alert closes and an outreach counts toward the quarter's cap."""
        return await close(alert_id, "done", None, principal.name)

    @app.post("/v1/accounts/{account_id}/outreach")
    async def outreach(account_id: str, principal: Principal = Depends(actor)) -> dict[str, object]:
        count = await runtime.outbox.log_outreach(account_id, principal.name)
        return {"account_id": account_id, "outreaches_this_quarter": count}

    @app.put("/v1/accounts/{account_id}/opt-out")
    async def opt_out(account_id: str, body: OptOut, principal: Principal = Depends(actor)) -> dict[str, object]:
        await runtime.outbox.set_attention(account_id, opted_out=True, reason=body.reason)
        return {"account_id": account_id, "opted_out": True}

    @app.delete("/v1/accounts/{account_id}/opt-out")
    async def opt_in(account_id: str, principal: Principal = Depends(actor)) -> dict[str, object]:
        await runtime.outbox.set_attention(account_id, opted_out=False)
        return {"account_id": account_id, "opted_out": False}

    @app.post("/v1/digest/send")
    async def send_digest(principal: Principal = Depends(actor)) -> dict[str, object]:
        """Send the digest now (it also goes out every `notifier.fatigue.digest_every_hours`)."""
        return {"sent": await runtime.send_digest()}

    @app.post("/slack/interactions")
    async def slack_interactions(request: Request) -> dict[str, str]:
        if runtime.slack_verifier is None:
            raise HTTPException(404, "Slack interactivity is off: set RADAR_SLACK_SIGNING_SECRET")
        body = await request.body()
        if not runtime.slack_verifier.is_valid(
            body, request.headers.get("x-slack-request-timestamp"), request.headers.get("x-slack-signature")
        ):
            raise HTTPException(401, "invalid or expired Slack request signature")
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            user = payload.get("user", {}).get("username") or payload.get("user", {}).get("id") or "slack"
            actions = [(a["action_id"], a.get("value", "")) for a in payload.get("actions", [])]
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            raise HTTPException(400, "expected a form field 'payload' holding Slack's block_actions JSON") from None
        for action_id, alert_id in actions:
            if action_id == "snooze":
                await snooze_alert(alert_id, None, f"snoozed by {user}")
            elif action_id == "done":
                await close(alert_id, "done", None, f"slack:{user}")
        return {"ok": "true"}

    return app
