"""The web console's routes over a real scoring service on PostgreSQL, without a browser: who may log in, what
bad input answers, and that the key never travels in a URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.fixtures.scoring import ScoringApi


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
