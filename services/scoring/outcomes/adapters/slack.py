"""The weekly summary's way out: a Slack incoming webhook, else standard output."""

from __future__ import annotations

import asyncio

import httpx


async def post_summary(text: str, webhook_url: str | None, http: httpx.AsyncClient | None = None) -> bool:
    """To a Slack incoming webhook; without one it is printed (as the notifier's console channel does)."""
    if not webhook_url:
        print(text, flush=True)
        return False
    client = http or httpx.AsyncClient(timeout=10)
    try:
        for attempt in range(3):
            response = await client.post(webhook_url, json={"text": text})
            if response.status_code == 429 or response.status_code >= 500:
                await asyncio.sleep(min(float(response.headers.get("retry-after", 1 + attempt)), 30))
                continue
            response.raise_for_status()
            return True
        response.raise_for_status()
        return False
    finally:
        if http is None:
            await client.aclose()
