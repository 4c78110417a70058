"""CRM channels: a HubSpot task (CRM v3 objects API) or a Salesforce Task (REST sObject API), and
optionally a deal / Opportunity, each carrying the delivery's idempotency key as an external id.

HubSpot: the key goes in `radar_alert_key`, a unique-value property, so a repeat create answers 409
(treated as already delivered). Salesforce: an upsert by the external-id field `Radar_Alert_Key__c`,
which creates once and updates after. Tokens come from the environment and never reach a log or error."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from services.notifier.adapters.channels.base import PermanentDelivery, RetryableDelivery, retry_after
from services.notifier.domain.messages import TIER_LABEL, plain_text, task_subject
from shared.schemas import Alert

HUBSPOT_TASK_TO_COMPANY = 192
HUBSPOT_DEAL_TO_COMPANY = 5


def _check(response: httpx.Response, receiver: str, conflict_ok: bool = False) -> None:
    status = response.status_code
    if 200 <= status < 300 or (conflict_ok and status == 409):
        return
    if status == 429 or status >= 500:
        raise RetryableDelivery(f"{receiver} answered {status}", retry_after(response), rate_limited=status == 429)
    if receiver == "salesforce" and status == 403 and "REQUEST_LIMIT_EXCEEDED" in response.text:
        raise RetryableDelivery("salesforce API request limit exceeded", retry_after(response), rate_limited=True)
    raise PermanentDelivery(f"{receiver} answered {status}: {response.text[:200]}")


async def _call(client: httpx.AsyncClient, receiver: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise RetryableDelivery(f"{receiver} unreachable: {type(exc).__name__}") from exc


class HubSpotChannel:
    name = "hubspot"
    seconds_per_message = 0.0

    def __init__(self, base_url: str, token: str, client: httpx.AsyncClient, create_deal: bool = False) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"authorization": f"Bearer {token}"}
        self._client = client
        self._create_deal = create_deal
        self._companies: dict[str, str | None] = {}
        self._owners: dict[str, str | None] = {}

    async def _company_id(self, account_id: str) -> str | None:
        if account_id not in self._companies:
            match = {"propertyName": "radar_account_id", "operator": "EQ", "value": account_id}
            body = {"filterGroups": [{"filters": [match]}], "limit": 1}
            response = await _call(
                self._client, "hubspot", "POST", f"{self._base}/crm/v3/objects/companies/search", json=body, headers=self._headers
            )
            _check(response, "hubspot")
            results = response.json().get("results", [])
            self._companies[account_id] = str(results[0]["id"]) if results else None
        return self._companies[account_id]

    async def _owner_id(self, owner: str | None) -> str | None:
        if not owner:
            return None
        if owner not in self._owners:
            url = f"{self._base}/crm/v3/owners/"
            response = await _call(self._client, "hubspot", "GET", url, params={"email": owner}, headers=self._headers)
            _check(response, "hubspot")
            results = response.json().get("results", [])
            self._owners[owner] = str(results[0]["id"]) if results else None
        return self._owners[owner]

    async def send(self, alert: Alert, key: str) -> None:
        company, owner = await self._company_id(alert.account_id), await self._owner_id(alert.owner)
        properties = {
            "hs_timestamp": alert.created_at.isoformat(),
            "hs_task_subject": task_subject(alert),
            "hs_task_body": plain_text(alert),
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH" if alert.tier.value in ("immediate", "short_term") else "MEDIUM",
            "radar_alert_key": key,
        }
        if owner:
            properties["hubspot_owner_id"] = owner
        await self._create("tasks", properties, company, HUBSPOT_TASK_TO_COMPANY)
        if self._create_deal and alert.kind == "expansion" and alert.expansion_arr:
            deal = {"dealname": f"Expansion: {alert.account_name}"[:255], "amount": f"{alert.expansion_arr:.2f}", "radar_alert_key": key}
            deal.update({"pipeline": "default", "dealstage": "appointmentscheduled", "description": TIER_LABEL[alert.tier]})
            if owner:
                deal["hubspot_owner_id"] = owner
            await self._create("deals", deal, company, HUBSPOT_DEAL_TO_COMPANY)

    async def _create(self, kind: str, properties: dict[str, str], company: str | None, association: int) -> None:
        body: dict[str, Any] = {"properties": properties}
        if company:
            body["associations"] = [
                {"to": {"id": company}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association}]}
            ]
        response = await _call(self._client, "hubspot", "POST", f"{self._base}/crm/v3/objects/{kind}", json=body, headers=self._headers)
        _check(response, "hubspot", conflict_ok=True)  # 409: an object with this radar_alert_key exists


class SalesforceChannel:
    name = "salesforce"
    seconds_per_message = 0.0

    def __init__(
        self, instance_url: str, token: str, client: httpx.AsyncClient, api_version: str = "v60.0", create_opportunity: bool = False
    ) -> None:
        self._base = f"{instance_url.rstrip('/')}/services/data/{api_version}/sobjects"
        self._headers = {"authorization": f"Bearer {token}"}
        self._client = client
        self._create_opportunity = create_opportunity

    async def send(self, alert: Alert, key: str) -> None:
        account = {"attributes": {"type": "Account"}, "Radar_Account_Id__c": alert.account_id}
        task = {
            "Subject": task_subject(alert),
            "Description": plain_text(alert),
            "Status": "Not Started",
            "Priority": "High" if alert.tier.value in ("immediate", "short_term") else "Normal",
            "ActivityDate": alert.created_at.date().isoformat(),
            "What": account,
        }
        await self._upsert("Task", key, task)
        if self._create_opportunity and alert.kind == "expansion" and alert.expansion_arr:
            opportunity = {
                "Name": f"Expansion: {alert.account_name}"[:120],
                "StageName": "Prospecting",
                "CloseDate": (alert.created_at + timedelta(days=90)).date().isoformat(),
                "Amount": alert.expansion_arr,
                "Account": {"Radar_Account_Id__c": alert.account_id},
            }
            await self._upsert("Opportunity", key, opportunity)

    async def _upsert(self, sobject: str, key: str, body: dict[str, Any]) -> None:
        url = f"{self._base}/{sobject}/Radar_Alert_Key__c/{quote(key, safe='')}"
        response = await _call(self._client, "salesforce", "PATCH", url, json=body, headers=self._headers)
        _check(response, "salesforce")
