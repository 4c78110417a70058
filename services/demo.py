"""A built-in sample customer base, streamed through ingest so a newcomer sees alerts within a minute."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from rich.console import Console


@dataclass(frozen=True)
class DemoAccount:
    account_id: str
    name: str
    domain: str
    api_call_limit: int
    seat_limit: int
    arr: float
    csm: str
    ae: str
    growth: float  # share of the limit consumed per tick: the fast growers cross 80 % within ~20 s


ACCOUNTS = [
    DemoAccount("acme", "Acme Corp", "acme.example", 10_000, 50, 48_000, "dana@vendor.example", "lee@vendor.example", 0.045),
    DemoAccount("globex", "Globex", "globex.example", 20_000, 100, 120_000, "sam@vendor.example", "kim@vendor.example", 0.035),
    DemoAccount("initech", "Initech", "initech.example", 5_000, 25, 18_000, "dana@vendor.example", "lee@vendor.example", 0.03),
    DemoAccount("umbrella", "Umbrella", "umbrella.example", 50_000, 200, 250_000, "ria@vendor.example", "kim@vendor.example", 0.02),
    DemoAccount("hooli", "Hooli", "hooli.example", 8_000, 40, 36_000, "sam@vendor.example", "lee@vendor.example", 0.012),
    DemoAccount("stark", "Stark Industries", "stark.example", 30_000, 150, 180_000, "ria@vendor.example", "kim@vendor.example", 0.006),
]
TICK_S = 0.5


def account_body(account: DemoAccount) -> dict[str, object]:
    return {
        "name": account.name,
        "domains": [account.domain],
        "plan": "growth",
        "limits": {"api_calls": account.api_call_limit, "seats": account.seat_limit},
        "arr": account.arr,
        "owners": {"csm": account.csm, "ae": account.ae},
    }


def tick_events(account: DemoAccount, tick: int, rng: random.Random) -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    quantity = round(account.api_call_limit * account.growth * rng.uniform(0.6, 1.4))
    events: list[dict[str, object]] = [
        {
            "id": str(uuid.uuid4()),
            "type": "usage",
            "account_id": account.account_id,
            "timestamp": now,
            "metric": "api_calls",
            "quantity": quantity,
        }
    ]
    if tick % 20 == 5:
        user = f"user{tick}"
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "user_added",
                "account_id": account.account_id,
                "timestamp": now,
                "user": {"id": f"{account.account_id}-{user}", "email": f"{user}@{account.domain}"},
            }
        )
    return events


async def stream_demo(url: str, key: str, seconds: float | None, console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {key}"}
    deadline = None if seconds is None else asyncio.get_running_loop().time() + seconds
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        for account in ACCOUNTS:
            (await client.put(f"/v1/accounts/{account.account_id}", json=account_body(account))).raise_for_status()
        console.print(f"[blue]demo[/blue]: {len(ACCOUNTS)} sample accounts declared; streaming usage every {TICK_S}s")
        sent = 0
        for tick in itertools.count():
            if deadline is not None and asyncio.get_running_loop().time() > deadline:
                break
            events = [event for account in ACCOUNTS for event in tick_events(account, tick, rng)]
            try:
                response = await client.post("/v1/events", json={"events": events})
                response.raise_for_status()
                sent += len(events)
            except httpx.HTTPError as exc:
                console.print(f"[blue]demo[/blue]: ingest refused a batch ({exc}); retrying next tick")
            if tick and tick % 20 == 0:
                console.print(f"[blue]demo[/blue]: {sent} events sent")
            await asyncio.sleep(TICK_S)
