"""The worker's web pages, on Faust's own web server: the live state of an account, /metrics, /healthz, /readyz."""

from __future__ import annotations

from typing import cast

import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.signals.adapters.table import AccountTable
from services.signals.domain.state import dump_state, load_state
from services.signals.entrypoints.faust_app import SignalsApp, recovery_done


def _app(web: View) -> SignalsApp:
    return cast(SignalsApp, web.app)


async def account_state(web: View, request: Request, **match_info: str) -> Response:
    """The live per-account state (limits, this period's usage, thresholds spent), from the owning worker, every
    field shown (the table leaves out those at their defaults)."""
    account_id = match_info["account_id"]
    state = _app(web).signals_worker.table.stored(account_id)
    if state is None:
        return web.json({"detail": f"no state for account {account_id!r}"}, status=404)
    return web.bytes(orjson.dumps(dump_state(load_state(state))), content_type="application/json")


async def metrics(web: View, request: Request) -> Response:
    # aiohttp refuses a charset inside content_type; the whole header passes as it is
    return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(web: View, request: Request) -> Response:
    body, status = _app(web).recovery_watch.health()
    return web.json(body, status=status)


async def readyz(web: View, request: Request) -> Response:
    app = web.app
    checks = {
        "consumer_assigned": bool(app.consumer.assignment()) if app.consumer else False,
        "not_rebalancing": not app.rebalancing,
        "tables_recovered": recovery_done(app),
    }
    ready = all(checks.values())
    return web.json({"ready": ready, "checks": checks}, status=200 if ready else 503)


def add_pages(app: SignalsApp, table: AccountTable) -> None:
    """The state page is served by the worker that owns the account's partition: Faust routes the request there."""
    app.page("/v1/state/{account_id}")(app.table_route(table=table, match_info="account_id")(account_state))
    app.page("/metrics")(metrics)
    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
