"""The notifier's HTTP entrypoint: ops endpoints, the actions API (bearer key, "read" scope) and Slack's
interactivity endpoint (request signature checked with the app's signing secret, 5-minute replay window)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from services.notifier.adapters.outbox import UnknownAlert
from services.notifier.handlers.commands import AlertCommands
from shared.auth import Principal, require_scope
from shared.observability import service_app

if TYPE_CHECKING:
    from services.notifier.bootstrap import NotifierRuntime

router = APIRouter()


class Snooze(BaseModel):
    until: datetime = Field(description="alerts for the account wait for the digest until then (timezone-aware)")
    reason: str | None = Field(default=None, max_length=1000)


class Dismiss(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="why the alert is not worth acting on")


class OptOut(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


def create_app(runtime: NotifierRuntime) -> FastAPI:
    app = service_app("notifier", runtime)
    app.state.runtime = runtime
    app.include_router(router)
    return app


def _runtime(request: Request) -> NotifierRuntime:
    return cast("NotifierRuntime", request.app.state.runtime)


def commands(request: Request) -> AlertCommands:
    return _runtime(request).commands


async def actor(request: Request) -> Principal:
    return await require_scope(request, _runtime(request).keys, "read")


@asynccontextmanager
async def _answering_for(alert_id: str) -> AsyncIterator[None]:
    """An alert the notifier never stored is a 404; a broker that did not take the action a 503 (it is applied
    here already: a retry applies it again, which changes nothing, and publishes it)."""
    try:
        yield
    except UnknownAlert:
        raise HTTPException(404, f"no alert {alert_id!r} has reached the notifier") from None
    except KafkaError:
        raise HTTPException(503, "the action is recorded but Kafka did not take it; retry", headers={"Retry-After": "5"}) from None


@router.post("/v1/alerts/{alert_id}/snooze")
async def snooze(
    alert_id: str, body: Snooze, principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)
) -> dict[str, str]:
    if body.until.tzinfo is None:
        raise HTTPException(422, "until: give a timezone, e.g. 2026-12-01T09:00:00Z")
    async with _answering_for(alert_id):
        return await alerts.snooze(alert_id, body.until, body.reason, principal.name)


@router.post("/v1/alerts/{alert_id}/dismiss")
async def dismiss(
    alert_id: str, body: Dismiss, principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)
) -> dict[str, str]:
    async with _answering_for(alert_id):
        return await alerts.close(alert_id, "dismissed", body.reason, principal.name)


@router.post("/v1/alerts/{alert_id}/done")
async def done(alert_id: str, principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)) -> dict[str, str]:
    """The owner reached out: the alert closes and an outreach counts toward the quarter's cap."""
    async with _answering_for(alert_id):
        return await alerts.close(alert_id, "done", None, principal.name)


@router.post("/v1/accounts/{account_id}/outreach")
async def outreach(account_id: str, principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)) -> dict[str, object]:
    count = await alerts.log_outreach(account_id, principal.name)
    return {"account_id": account_id, "outreaches_this_quarter": count}


@router.put("/v1/accounts/{account_id}/opt-out")
async def opt_out(
    account_id: str, body: OptOut, principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)
) -> dict[str, object]:
    await alerts.set_opted_out(account_id, True, body.reason)
    return {"account_id": account_id, "opted_out": True}


@router.delete("/v1/accounts/{account_id}/opt-out")
async def opt_in(account_id: str, principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)) -> dict[str, object]:
    await alerts.set_opted_out(account_id, False)
    return {"account_id": account_id, "opted_out": False}


@router.post("/v1/digest/send")
async def send_digest(principal: Principal = Depends(actor), alerts: AlertCommands = Depends(commands)) -> dict[str, object]:
    """Send the digest now (it also goes out every `notifier.fatigue.digest_every_hours`)."""
    return {"sent": await alerts.send_digest()}


@router.post("/slack/interactions")
async def slack_interactions(request: Request, alerts: AlertCommands = Depends(commands)) -> dict[str, str]:
    verifier = _runtime(request).slack_verifier
    if verifier is None:
        raise HTTPException(404, "Slack interactivity is off: set RADAR_SLACK_SIGNING_SECRET")
    body = await request.body()
    if not verifier.is_valid(body, request.headers.get("x-slack-request-timestamp"), request.headers.get("x-slack-signature")):
        raise HTTPException(401, "invalid or expired Slack request signature")
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        user = payload.get("user", {}).get("username") or payload.get("user", {}).get("id") or "slack"
        actions = [(a["action_id"], a.get("value", "")) for a in payload.get("actions", [])]
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        raise HTTPException(400, "expected a form field 'payload' holding Slack's block_actions JSON") from None
    for action_id, alert_id in actions:
        async with _answering_for(alert_id):
            if action_id == "snooze":
                await alerts.snooze(alert_id, None, f"snoozed by {user}", f"slack:{user}")
            elif action_id == "done":
                await alerts.close(alert_id, "done", None, f"slack:{user}")
    return {"ok": "true"}
