"""The web console in headless Chromium (Playwright, Debian's chromium) over a real scoring + notifier stack:
log in, the ranking, an account with its charts drawn, a dismissal seen in the API too, a bad key refused,
account-supplied text escaped. Screenshots of each page go to the test's tmp dir."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fixtures.console import SCRIPT_NAME, usage_signal
from tests.helpers import wait_for

LOGIN_ERROR = "#login-error"


def log_in(page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/ui/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/ui/accounts")


def test_log_in_rank_open_an_account_see_its_charts_and_dismiss_an_alert_seen_in_the_api(
    console_stack, browser_factory, tmp_path: Path
) -> None:
    base, key = console_stack.base_url, console_stack.key
    browser = browser_factory()
    page = browser.page
    log_in(page, base, key)
    assert key not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "radar_console_key")
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")

    # ranked by score, as the API ranks them
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    items = api.get("/v1/accounts").json()["items"]
    ranked = [item["account_id"] for item in items]
    shown = page.locator("#accounts tbody tr").evaluate_all("rows => rows.map(r => r.dataset.accountId)")
    assert shown == ranked and set(shown) == {"acme", "globex", "xss"}
    assert page.locator("#accounts tbody tr").first.locator(".spark polyline").get_attribute("points")
    page.screenshot(path=str(tmp_path / "accounts.png"), full_page=True)

    # filters run in SQL: one tier, one owner, a search
    page.goto(f"{base}/ui/accounts?q=glob")
    assert page.locator("#accounts tbody tr").evaluate_all("rows => rows.map(r => r.dataset.accountId)") == ["globex"]
    owner = next(item["owner"] for item in items if item["account_id"] == "acme")
    page.goto(f"{base}/ui/accounts")
    page.select_option("select[name=owner]", owner)
    page.click(".filters button[type=submit]")
    page.wait_for_url("**owner=**")
    owned = page.locator("#accounts tbody tr").evaluate_all("rows => rows.map(r => r.dataset.accountId)")
    assert owned == [item["account_id"] for item in items if item["owner"] == owner] and "acme" in owned

    # the account: breakdown, seats vs licence, a usage chart per metric drawn by uPlot, alerts with delivery state
    page.goto(f"{base}/ui/accounts")
    page.click("a.account-link:text('Acme Corp')")
    page.wait_for_url(f"{base}/ui/accounts/acme")
    assert page.locator("#account-name").inner_text() == "Acme Corp"
    assert page.locator("#drivers li").count() >= 2
    assert "45 of 50 licensed" in page.locator("#seats").inner_text()
    page.wait_for_selector('[data-chart="usage"][data-drawn="true"] canvas')
    assert page.locator('[data-chart="usage"] canvas').count() == 2  # api_calls and seats
    detail = api.get("/v1/accounts/acme").json()
    open_before = [a["alert_id"] for a in detail["open_alerts"]]
    assert open_before, "scoring raised no alert for acme"
    rows = page.locator("#alerts tbody tr[data-status=open]")
    assert rows.count() == len(open_before)
    page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

    # dismiss one: gone from the open alerts in the page and in the API, the opportunity lost
    target = rows.first.get_attribute("data-alert-id")
    rows.first.locator("button[data-action=dismiss]").click()
    page.wait_for_selector("#notice")
    assert page.locator(f'#alerts tr[data-alert-id="{target}"]').get_attribute("data-status") == "dismissed"
    assert page.locator(f'#alerts tr[data-alert-id="{target}"] button').count() == 0
    after = [a["alert_id"] for a in api.get("/v1/accounts/acme").json()["open_alerts"]]
    assert target not in after and set(after) == set(open_before) - {target}

    def lost_opportunity() -> dict | None:  # scoring moves it when it consumes the console's action (alert-actions)
        latest = api.get("/v1/opportunities", params={"account_id": "acme"}).json()["items"][0]
        return latest if latest["stage"] == "lost" else None

    opportunity = wait_for(lost_opportunity, 15, "scoring to lose the opportunity of the dismissed alert")
    assert opportunity["stage"] == "lost" and "not a fit right now" in opportunity["reason"]

    # the other pages render their charts
    page.goto(f"{base}/ui/pipeline")
    assert page.locator('#stages [data-stage="lost"] .count').inner_text() == "1"
    assert page.locator('#stages [data-stage="won"] .count').inner_text() == "1"  # Globex's upgrade won its opportunity
    page.screenshot(path=str(tmp_path / "pipeline.png"), full_page=True)
    page.goto(f"{base}/ui/outcomes")
    assert (page.locator("#kpi-nrr").inner_text(), page.locator("#kpi-grr").inner_text()) == ("120.0%", "100.0%")  # LEDGER's Q4
    page.wait_for_selector('[data-source="revenue-nrr"][data-drawn="true"] canvas')
    page.wait_for_selector('[data-source="signals-type"][data-drawn="true"] canvas')
    page.screenshot(path=str(tmp_path / "outcomes.png"), full_page=True)
    page.goto(f"{base}/ui/live")
    listed = len(console_stack.alert_ids)
    wait_for(lambda: page.locator("#live-alerts li").count() == listed, 15, "the live page to list the alerts")
    # a new alert appears without a reload
    console_stack.send_signal(usage_signal("globex-seats", "globex", "seats", 0.92, 50, 10))
    page.wait_for_selector('#live-alerts li.fresh[data-alert-id="alert:globex-seats"]', timeout=60_000)
    assert page.locator("#live-alerts li").first.get_attribute("data-alert-id") == "alert:globex-seats"
    assert page.locator("#live-alerts li").count() == listed + 1
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    assert browser.dialogs == []
    assert all((tmp_path / f"{name}.png").stat().st_size > 5_000 for name in ("accounts", "account", "pipeline", "outcomes", "live"))


def test_a_bad_key_is_refused_and_pages_need_a_login(console_stack, browser_factory, tmp_path: Path) -> None:
    base = console_stack.base_url
    page = browser_factory().page
    page.goto(f"{base}/ui/accounts/acme")
    assert page.url == f"{base}/ui/login"  # not logged in: the login page, not the account
    response_status: list[int] = []
    page.on("response", lambda response: response_status.append(response.status) if response.url.endswith("/ui/login") else None)
    page.fill("#key", "rdr_not-a-real-key")
    page.click("button[type=submit]")
    page.wait_for_selector(LOGIN_ERROR)
    assert "not known" in page.locator(LOGIN_ERROR).inner_text()
    assert 401 in response_status
    assert not [c for c in page.context.cookies() if c["name"] == "radar_console_key"]
    page.screenshot(path=str(tmp_path / "login-refused.png"))
    # a forged cookie is no better than a forged form
    page.context.add_cookies([{"name": "radar_console_key", "value": "rdr_forged", "url": f"{base}/ui"}])
    page.goto(f"{base}/ui/pipeline")
    assert page.url == f"{base}/ui/login"


def test_an_account_named_script_renders_as_text(console_stack, browser_factory, tmp_path: Path) -> None:
    base = console_stack.base_url
    browser = browser_factory()
    page = browser.page
    log_in(page, base, console_stack.key)
    row = page.locator('#accounts tr[data-account-id="xss"] a.account-link')
    assert row.inner_text() == SCRIPT_NAME
    row.click()
    page.wait_for_url(f"{base}/ui/accounts/xss")
    assert page.locator("#account-name").inner_text() == SCRIPT_NAME
    assert SCRIPT_NAME not in page.content()  # in the markup only escaped
    assert page.evaluate("document.querySelectorAll('main script:not([type])').length") == 0
    page.screenshot(path=str(tmp_path / "script-named-account.png"))
    assert browser.dialogs == []
