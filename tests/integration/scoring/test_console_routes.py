"""The web console's routes over a real scoring service on PostgreSQL, without a browser: who may log in, what
bad input answers, and that the key never travels in a URL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx

from services.scoring.adapters.tables import AlertRecord, Score
from services.scoring.entrypoints.console import queries
from services.scoring.entrypoints.console.routes import ACTION_WAIT_S
from shared.db import AccountAttention, ClosedAlert, OutboxAlert, create_engine, sessionmaker
from shared.schemas import AlertAction, utcnow
from tests.fixtures.scoring import ScoringApi
from tests.helpers import TopicReader


def console(api: ScoringApi) -> httpx.Client:
    return httpx.Client(base_url=api.base_url, timeout=10)


@contextmanager
def logged_in(api: ScoringApi) -> Iterator[httpx.Client]:
    key = api.headers["Authorization"].removeprefix("Bearer ")
    with console(api) as client:
        answer = client.post("/ui/login", data={"key": key})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/accounts"
        assert key not in answer.headers["location"]
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        yield client


def test_only_a_key_with_the_read_scope_logs_in(scoring_api: ScoringApi, api_key_factory, database_url: str) -> None:
    with console(scoring_api) as client:
        assert client.get("/ui/accounts").status_code == 303  # to the login page
        refused = client.post("/ui/login", data={"key": "rdr_unknown"})
        assert refused.status_code == 401 and "not known or was revoked" in refused.text and "set-cookie" not in refused.headers
        writer = api_key_factory(database_url, "writer", ("--scope", "events"))
        lacking = client.post("/ui/login", data={"key": writer})
        assert lacking.status_code == 401 and "lacks the &#39;read&#39; scope" in lacking.text
        assert client.post("/ui/login", data={}).status_code == 401
        assert client.post("/ui/login", data={"key": "a\x00b"}).status_code == 401


def test_pages_answer_and_bad_input_is_named(scoring_api: ScoringApi) -> None:
    with logged_in(scoring_api) as client:
        for path in ("/ui/accounts", "/ui/accounts/acme", "/ui/pipeline", "/ui/outcomes", "/ui/live"):
            page = client.get(path)
            assert page.status_code == 200, (path, page.text[:500])
            assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "acme" in client.get("/ui/accounts").text
        bad_tier = client.get("/ui/accounts", params={"tier": "hot"})
        assert bad_tier.status_code == 400 and "tier: &#39;hot&#39; is not one of" in bad_tier.text
        assert client.get("/ui/accounts", params={"page": "-1"}).status_code == 400
        assert client.get("/ui/accounts/nobody").status_code == 404
        live = client.get("/ui/live/alerts").json()["items"]
        opened = httpx.get(f"{scoring_api.base_url}/v1/accounts/acme", headers=scoring_api.headers).json()["open_alerts"]
        assert [item["alert_id"] for item in live] == [alert["alert_id"] for alert in opened]
        assert client.get("/ui/live/alerts", params={"after": "2026-11-10T12:00:00"}).status_code == 422
        unknown = client.post("/ui/alerts/alert:nope/dismiss", data={"reason": "x"})
        assert unknown.status_code == 404 and "no alert 'alert:nope'" in unknown.json()["detail"]
        assert client.post("/ui/alerts/alert:nope/dismiss", data={"reason": " "}).status_code == 422
        assert client.post("/ui/alerts/alert:nope/explode").status_code == 404
        assert client.get("/ui/static/uPlot.iife.min.js").status_code == 200
        client.post("/ui/logout")
        assert client.get("/ui/accounts").status_code == 303


def test_a_revoked_key_is_logged_out_at_the_next_page(scoring_api: ScoringApi, database_url: str) -> None:
    with logged_in(scoring_api) as client:
        assert client.get("/ui/pipeline").status_code == 200
        revoked = subprocess.run(
            [sys.executable, "-m", "services.cli", "keys", "revoke", "test"],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoked.returncode == 0, revoked.stderr
        gone = client.get("/ui/pipeline")
        assert gone.status_code == 303 and gone.headers["location"] == "/ui/login"
        assert client.get("/ui/live/alerts").status_code == 401


def test_forms_posted_from_another_site_are_refused_and_every_answer_carries_the_headers(scoring_api: ScoringApi) -> None:
    """SameSite=Strict keeps the cookie off another site's requests, not off a sibling subdomain's, and logging in
    needs no cookie: each POST also checks Sec-Fetch-Site (or Origin) names the console's own origin."""
    key = scoring_api.headers["Authorization"].removeprefix("Bearer ")
    host = scoring_api.base_url.split("://", 1)[1]
    with logged_in(scoring_api) as client:
        for foreign in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            for path, form in (("/ui/login", {"key": key}), ("/ui/logout", {}), ("/ui/alerts/alert:nope/dismiss", {"reason": "x"})):
                refused = client.post(path, data=form, headers=foreign)
                assert refused.status_code == 403 and "another site" in refused.json()["detail"], (path, foreign)
                assert "set-cookie" not in refused.headers
        own = {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        assert client.post("/ui/alerts/alert:nope/dismiss", data={"reason": "x"}, headers=own).status_code == 404
        assert client.post("/ui/alerts/alert:nope/dismiss", data={"reason": "x"}, headers={"Origin": f"http://{host}"}).status_code == 404
        assert client.get("/ui/accounts").status_code == 200  # still logged in: no refused logout went through
        oversized = client.post("/ui/alerts/alert:nope/dismiss", data={"reason": "x" * 5000})
        assert oversized.status_code == 413
        for answer in (client.get("/ui/live/alerts"), oversized, client.get("/ui/static/console.js"), client.get("/ui")):
            assert (
                answer.headers["x-content-type-options"] == "nosniff"
                and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            )
        assert client.get("/ui/live/alerts").headers["cache-control"] == "no-store"
        assert "no-store" not in client.get("/ui/static/console.js").headers.get("cache-control", "")
        assert "content-security-policy" not in client.get("/v1/accounts", headers=scoring_api.headers).headers


async def test_the_live_feed_catches_up_on_a_burst_and_an_ended_snooze_is_not_shown(backend_database_url: str) -> None:
    """More alerts between two polls than one answer holds come over the next polls, oldest first, none skipped."""
    engine = create_engine(backend_database_url)
    sessions = sessionmaker(engine)
    start = utcnow() - timedelta(hours=1)
    try:
        async with sessions.begin() as session:
            session.add_all(
                AlertRecord(
                    alert_id=f"a{n:02d}",
                    signal_id=f"s{n:02d}",
                    account_id="acme",
                    payload={"alert_id": f"a{n:02d}", "created_at": (start + timedelta(seconds=n)).isoformat()},
                    created_at=start + timedelta(seconds=n),
                )
                for n in range(25)
            )
            session.add(Score(account_id="acme", score=80, tier="immediate", breakdown={}, inputs={}, updated_at=start))
            session.add(AccountAttention(account_id="acme", snoozed_until=start))
        async with sessions() as session:
            newest = await queries.alerts_since(session, start - timedelta(seconds=1))
            assert [payload["alert_id"] for payload, _ in newest] == [f"a{n:02d}" for n in range(24, 4, -1)]
            shown, after = [], start - timedelta(seconds=1)
            for _poll in range(3):
                found = await queries.alerts_since(session, after, catching_up=True)
                assert [at for _, at in found] == sorted((at for _, at in found), reverse=True)  # newest first, as the page reads it
                shown += [payload["alert_id"] for payload, _ in reversed(found)]
                after = found[0][1] if found else after
            assert shown == [f"a{n:02d}" for n in range(25)]
            page = await queries.account_page(session, "acme")
        assert page is not None and page.alerts and all(row.snoozed_until is None for row in page.alerts)
    finally:
        await engine.dispose()


async def _notifier_stored(database_url: str, alert_id: str, closed: bool = False) -> None:
    """What the notifier's tables would hold (no notifier runs here)."""
    engine = create_engine(database_url)
    try:
        async with sessionmaker(engine).begin() as session:
            session.add(OutboxAlert(alert_id=alert_id, payload={"alert_id": alert_id, "account_id": "acme"}, account_id="acme"))
            if closed:
                session.add(ClosedAlert(alert_id=alert_id, account_id="acme", status="done", actor="dana"))
    finally:
        await engine.dispose()


async def _published(bootstrap: str, topic: str, count: int) -> list[AlertAction]:
    async with TopicReader(bootstrap, topic) as reader:
        await reader.wait_count(count, 30, "alert actions")
        await reader.drain_for(1)
        return [AlertAction.model_validate_json(record.value) for record in reader.records]


def test_an_action_goes_to_alert_actions_and_says_it_is_queued_until_the_notifier_applies_it(
    scoring_api: ScoringApi, database_url: str
) -> None:
    """Nothing applies it here: after the wait the answer says the action is on its way; a closed alert is left as it is."""
    asyncio.run(_notifier_stored(database_url, "alert:open"))
    asyncio.run(_notifier_stored(database_url, "alert:closed", closed=True))
    with logged_in(scoring_api) as client:
        started = time.monotonic()
        queued = client.post("/ui/alerts/alert:open/dismiss", data={"reason": "already in contact"}, timeout=30)
        assert queued.status_code == 303 and queued.headers["location"] == "/ui/accounts/acme?notice=queued"
        assert time.monotonic() - started >= ACTION_WAIT_S
        closed = client.post("/ui/alerts/alert:closed/done")
        assert closed.status_code == 303 and closed.headers["location"] == "/ui/accounts/acme?notice=closed"
        assert "already closed" in client.get(closed.headers["location"]).text
    (action,) = asyncio.run(_published(scoring_api.bootstrap, scoring_api.alert_actions_topic, 1))
    assert (action.alert_id, action.account_id, action.action, action.reason, action.origin) == (
        "alert:open",
        "acme",
        "dismissed",
        "already in contact",
        "console",
    )
    assert action.actor == "console:test"
