"""The web console's routes under /ui: thin (read via queries.py, shape via views.py, render a template).

Login takes a key with the `read` scope from a form and keeps it in an HttpOnly, SameSite=Strict cookie (never in
a URL); every page checks it like the API checks a bearer key, so `radar keys revoke` logs the console out at the
next click; a form posted from another origin is refused (`same_origin`), and every answer under /ui carries
SECURITY_HEADERS (`ConsoleHeaders`). An alert action (done, snooze, dismiss) is published to alert-actions for the
notifier to apply (and for scoring to move the opportunity), and the answer waits, up to ACTION_WAIT_S, to see it
applied in the notifier's tables, so the page it redirects to shows the effect.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as ASGIScope

from services.scoring.domain.state import AccountState
from services.scoring.entrypoints.console import queries, views
from services.scoring.entrypoints.deps import runtime_of
from services.scoring.outcomes import reports
from services.scoring.outcomes.domain.metrics import segment_for
from services.scoring.outcomes.domain.periods import custom_period, quarters_up_to
from services.scoring.outcomes.domain.stages import OPEN_STAGES
from shared.auth import Principal, require_scope
from shared.schemas import ActionKind, AlertAction, utcnow
from shared.signal_types import summary_of

HERE = Path(__file__).resolve().parent
COOKIE = "radar_console_key"
COOKIE_MAX_AGE_S = 12 * 3600
FORM_LIMIT = 4096  # bytes: a login or action form is a key and a reason
NOTICES = {
    "done": "Marked done: the owner reached out.",
    "snooze": "Snoozed for a week.",
    "dismiss": "Alert dismissed.",
    "queued": "Sent to the notifier, which has not applied it yet: reload in a moment to see it.",
    "closed": "This alert was already closed: nothing changed.",
}
ACTIONS: dict[str, ActionKind] = {"done": "done", "dismiss": "dismissed", "snooze": "snoozed"}  # the console's word -> AlertAction.action
ACTION_WAIT_S = 10.0  # how long an action's answer waits to see the notifier apply it
ACTION_POLL_S = 0.1
DISMISS_REASONS = ("not a fit right now", "already in contact", "data looks wrong", "other")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_PAGE_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS.items()]
_STATIC_HEADERS = [(name, value) for name, value in _PAGE_HEADERS if name != b"cache-control"]  # the vendored files may be cached


class ConsoleHeaders:
    """SECURITY_HEADERS on every answer under /ui: pages, but also the redirects, the live feed, the refusals FastAPI
    words as JSON and the static files (those without `no-store`). Pure ASGI: the API's requests pay one prefix test."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/ui" and not path.startswith("/ui/"):
            await self.app(scope, receive, send)
            return
        headers = _STATIC_HEADERS if path.startswith("/ui/static/") else _PAGE_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoginRequired(Exception):
    """No cookie, or its key is unknown, revoked or lacks `read`: back to the login page."""


def account_url(account_id: str) -> str:
    return "/ui/accounts/" + quote(account_id, safe="")


def alert_action_url(alert_id: str, action: str) -> str:
    return f"/ui/alerts/{quote(alert_id, safe='')}/{action}"


def page_url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def same_origin(request: Request) -> None:
    """Refuses (403) a form a browser posts from another origin. SameSite=Strict keeps the cookie off cross-site
    requests, but not off a sibling subdomain's (the same site), and logging in needs no cookie at all (login CSRF).
    Browsers send Sec-Fetch-Site, or at least Origin, with every POST; a client sending neither (curl, a script) is
    not a browser, and carries no one else's cookie."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        allowed = fetch_site in ("same-origin", "none")  # none: the user's own action (typed, bookmarked)
    else:
        origin = request.headers.get("origin")
        allowed = origin is None or urlsplit(origin).netloc == request.headers.get("host")
    if not allowed:
        raise HTTPException(403, "this form was posted from another site: post it from the console's own pages")


TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.globals.update(
    account_url=account_url,
    alert_action_url=alert_action_url,
    page_url=page_url,
    money=views.money,
    percent=views.percent,
    humanize=views.humanize,
    tier_labels=views.TIER_LABELS,
)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


async def viewer(request: Request) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    try:
        return await require_scope(request, runtime_of(request).keys, "read", token=token)
    except HTTPException as exc:
        if exc.status_code in (401, 403):
            raise LoginRequired from None
        raise


async def form(request: Request) -> dict[str, str]:
    """The urlencoded form, never buffering more than FORM_LIMIT (as ingest's read_body does for its limit)."""
    declared = request.headers.get("content-length", "")
    too_large = HTTPException(413, f"form: at most {FORM_LIMIT} bytes")
    if declared.isdigit() and int(declared) > FORM_LIMIT:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise too_large
    return {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}


router = APIRouter(prefix="/ui", include_in_schema=False)
posted_here = [Depends(same_origin)]  # on every POST


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/accounts", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", error=None)


@router.post("/login", dependencies=posted_here)
async def login(request: Request) -> Response:
    key = (await form(request)).get("key", "").strip()
    principal = await runtime_of(request).keys.authenticate(key) if key and "\x00" not in key else None
    if principal is None or "read" not in principal.scopes:
        why = "That key is not known or was revoked." if principal is None else "That key lacks the 'read' scope."
        return render(request, "login.html", status_code=401, error=why if key else "Enter an API key.")
    response = RedirectResponse("/ui/accounts", status_code=303)
    response.set_cookie(
        COOKIE, key, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="strict", path="/ui", secure=request.url.scheme == "https"
    )
    return response


@router.post("/logout", dependencies=posted_here)
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/accounts")
async def accounts(request: Request) -> Response:
    principal = await viewer(request)
    runtime = runtime_of(request)
    segments = runtime.config.outcomes.segments
    error: str | None = None
    try:
        filters = views.parse_filters(dict(request.query_params), segments)
    except views.FilterError as exc:
        filters, error = views.AccountFilters(), str(exc)
    async with runtime.sessions() as session:
        rows, total = await queries.accounts_page(session, filters, segments)
        owners = await queries.owners(session)
    return render(
        request,
        "accounts.html",
        status_code=400 if error else 200,
        principal=principal,
        page="accounts",
        rows=rows,
        filters=filters,
        error=error,
        pager=views.pager(filters.page, total),
        owners=owners,
        segments=list(segments),
        sparkline=views.sparkline,
        trend_delta=views.trend_delta,
    )


@router.get("/accounts/{account_id:path}")
async def account(request: Request, account_id: str) -> Response:
    principal = await viewer(request)
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        data = await queries.account_page(session, account_id)
    if data is None:
        return render(request, "missing.html", status_code=404, principal=principal, page="accounts", what=account_id)
    state = AccountState.model_validate(data.score.inputs or {}) if data.score else AccountState()
    usage = {metric: snapshot.model_dump() for metric, snapshot in state.usage.items()}
    charts = views.usage_charts(usage, data.signals, utcnow())
    arr = data.account.arr if data.account else None
    return render(
        request,
        "account.html",
        principal=principal,
        page="accounts",
        account_id=account_id,
        data=data,
        name=data.account.name if data.account else account_id,
        owners=dict(data.account.owners or {}) if data.account else {},
        arr=arr,
        segment=segment_for(arr or 0.0, runtime.config.outcomes.segments),
        drivers=views.drivers(data.score.breakdown if data.score else None),
        charts=charts,
        charts_json=[chart.as_json() for chart in charts],
        seats=views.seats(usage, data.account.limits if data.account else None),
        timeline=[(s, summary_of(s), views.event_time(s)) for s in data.signals],
        sparkline=views.sparkline,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        dismiss_reasons=DISMISS_REASONS,
    )


@router.post("/alerts/{alert_id:path}/{action}", dependencies=posted_here)
async def alert_action(request: Request, alert_id: str, action: str) -> Response:
    """Published for the notifier (which applies it) and scoring (which moves the opportunity); answered once the
    notifier's tables show it, or after ACTION_WAIT_S with a notice that it is on its way."""
    principal = await viewer(request)
    fields = await form(request)
    if action not in ACTIONS:
        raise HTTPException(404, f"action: {action!r} is not one of done, snooze, dismiss")
    reason = None
    if action == "dismiss":
        reason = (fields.get("reason") or "").strip()[:1000]
        if not reason:
            raise HTTPException(422, "reason: say why the alert is dismissed")
    elif action == "snooze":
        reason = f"snoozed in the console by {principal.name}"
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        state = await queries.alert_state(session, alert_id)
    if state is None:
        raise HTTPException(404, f"no alert {alert_id!r} has reached the notifier")
    if state.closed is not None:
        return RedirectResponse(f"{account_url(state.account_id)}?notice=closed", status_code=303)
    published = AlertAction.clicked(
        alert_id=alert_id,
        account_id=state.account_id,
        action=ACTIONS[action],
        reason=reason,
        actor=f"console:{principal.name}",
        origin="console",
    )
    try:
        await runtime.alert_actions.publish(published)
    except KafkaError:
        raise HTTPException(503, "Kafka did not take the action; nothing changed, try again", headers={"Retry-After": "5"}) from None
    applied = await _applied(runtime.sessions, published)
    return RedirectResponse(f"{account_url(state.account_id)}?notice={action if applied else 'queued'}", status_code=303)


async def _applied(sessions: async_sessionmaker[AsyncSession], action: AlertAction) -> bool:
    """Whether the notifier applied the action within ACTION_WAIT_S (polling its tables)."""
    deadline = asyncio.get_running_loop().time() + ACTION_WAIT_S
    while True:
        async with sessions() as session:
            state = await queries.alert_state(session, action.alert_id)
        if state is not None and state.shows(action):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(ACTION_POLL_S)


@router.get("/pipeline")
async def pipeline(request: Request) -> Response:
    principal = await viewer(request)
    async with runtime_of(request).sessions() as session:
        totals, largest = await queries.pipeline(session)
    open_total = sum(t.amount for t in totals if t.stage in OPEN_STAGES)
    return render(
        request,
        "pipeline.html",
        principal=principal,
        page="pipeline",
        totals=totals,
        largest=largest,
        open_total=open_total,
        widest=max((t.count for t in totals), default=0) or 1,
    )


@router.get("/outcomes")
async def outcomes(request: Request) -> Response:
    principal = await viewer(request)
    runtime = runtime_of(request)
    config = runtime.config.outcomes
    quarters = quarters_up_to(utcnow(), 4)
    revenue = []
    for quarter in quarters:
        report = await reports.revenue_report(runtime.outcomes, quarter, config, reports.Scope(group_by="segment"))
        revenue.append((quarter.label, report.metrics.as_dict(), {name: m.as_dict() for name, m in report.groups.items()}))
    span = custom_period(quarters[0].start, quarters[-1].end)
    signals = await reports.signal_report(runtime.outcomes, span, config)
    rows = [row.as_dict() for row in signals.rows]
    return render(
        request,
        "outcomes.html",
        principal=principal,
        page="outcomes",
        span=f"{quarters[0].label} – {quarters[-1].label}",
        latest=revenue[-1][1],
        revenue={metric: views.revenue_series(revenue, metric) for metric in ("nrr", "grr", "expansion_rate")},
        signals=views.signal_series(rows),
        signal_rows=[r for r in rows if r["signal_type"] != "*" and r["tier"] != "*"],
        population=signals.population,
    )


@router.get("/live")
async def live(request: Request) -> Response:
    principal = await viewer(request)
    return render(request, "live.html", principal=principal, page="live")


@router.get("/live/alerts")
async def live_alerts(request: Request, after: datetime | None = None) -> Response:
    """The newest alerts as JSON for the live page's polling (cookie auth; 401 when logged out)."""
    try:
        await viewer(request)
    except LoginRequired:
        return JSONResponse({"detail": "log in again"}, status_code=401)
    if after is not None and after.tzinfo is None:
        return JSONResponse({"detail": "after: give a timezone"}, status_code=422)
    async with runtime_of(request).sessions() as session:
        found = await queries.alerts_since(session, after or utcnow() - timedelta(days=365), catching_up=after is not None)
    items = [
        {
            "alert_id": payload["alert_id"],
            "account_id": payload["account_id"],
            "account_name": payload.get("account_name") or payload["account_id"],
            "url": account_url(payload["account_id"]),
            "score": payload.get("score"),
            "tier": views.TIER_LABELS.get(payload.get("tier", ""), payload.get("tier")),
            "kind": payload.get("kind", "expansion"),
            "what": summary_of(payload.get("signal") or {}),
            "at": at.isoformat(),
        }
        for payload, at in found
    ]
    return JSONResponse({"items": items})


async def to_login(_request: Request, _exc: Exception) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def install_console(app: FastAPI) -> None:
    """Mounts /ui on the scoring app (whose state holds the runtime: sessions, keys, config, the actions' producer)."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    app.add_middleware(ConsoleHeaders)
    app.add_exception_handler(LoginRequired, to_login)
