"""Keys against the real ingest process: scopes, rate limits across processes, and revocation at once."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.integration.ingest.test_http import usage


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "keys", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_scopes_are_enforced_per_route(stack_factory, database_url, service_factory, api_key_factory) -> None:
    stack = stack_factory(database_url)
    events_key = api_key_factory(database_url, "events", ("--scope", "events"))
    accounts_key = api_key_factory(database_url, "accounts", ("--scope", "accounts"))
    service_factory("ingest", stack)
    async with httpx.AsyncClient(base_url=stack.url("ingest")) as client:
        as_events = {"Authorization": f"Bearer {events_key}"}
        as_accounts = {"Authorization": f"Bearer {accounts_key}"}
        assert (await client.post("/v1/events", json={"events": [usage("e1")]}, headers=as_events)).status_code == 202
        refused = await client.post("/v1/events", json={"events": [usage("e2")]}, headers=as_accounts)
        assert refused.status_code == 403 and "'events'" in refused.json()["detail"]
        assert (await client.put("/v1/accounts/acme", json={"name": "Acme"}, headers=as_events)).status_code == 403
        assert (await client.put("/v1/accounts/acme", json={"name": "Acme"}, headers=as_accounts)).status_code == 200


async def test_rate_limit_holds_across_processes_and_revocation_is_immediate(
    stack_factory, database_url, service_factory, api_key_factory
) -> None:
    first = stack_factory(database_url)
    second = stack_factory(database_url)
    limited = api_key_factory(database_url, "limited", ("--rate-limit", "3"))
    other = api_key_factory(database_url, "other")
    service_factory("ingest", first)
    service_factory("ingest", second)
    listing = run_cli(database_url, "list")
    assert listing.returncode == 0 and "3/min" in listing.stdout

    statuses = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {limited}"}) as client:
        for n, stack in enumerate([first, second, first, second]):
            response = await client.post(stack.url("ingest", "/v1/events"), json={"events": [usage(f"r{n}")]})
            statuses.append(response.status_code)
        assert statuses == [202, 202, 202, 429]
        assert 1 <= int(response.headers["retry-after"]) <= 60 and "3 requests a minute" in response.json()["detail"]

        # revoking takes effect at the next request, in every process (no key cache to expire)
        as_other = {"Authorization": f"Bearer {other}"}
        for stack in (first, second):
            assert (
                await client.post(stack.url("ingest", "/v1/events"), json={"events": [usage("x")]}, headers=as_other)
            ).status_code == 202
        revoked = run_cli(database_url, "revoke", "other")
        assert revoked.returncode == 0, revoked.stderr
        for stack in (first, second):
            after = await client.post(stack.url("ingest", "/v1/events"), json={"events": [usage("y")]}, headers=as_other)
            assert after.status_code == 401 and "revoked" in after.json()["detail"]
