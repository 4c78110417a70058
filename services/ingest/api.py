"""Ingest's HTTP entrypoint: thin routes over IngestService."""

from __future__ import annotations

import time

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram

from services.ingest.adapters import BrokerUnavailable
from services.ingest.bootstrap import IngestRuntime
from services.ingest.domain import BatchRejected, parse_event_batch
from shared.auth import Principal, require_scope
from shared.observability import service_app
from shared.schemas import AccountUpdate, AccountUpsert, EventBatch, IngestResult

EVENTS = Counter("radar_ingest_events", "Events received, by outcome", ["route", "outcome"])
REQUESTS = Counter("radar_ingest_requests", "HTTP requests, by route and status", ["route", "status"])
LATENCY = Histogram("radar_ingest_request_duration_seconds", "Request latency", ["route"])

RETRY_AFTER_S = 5


def create_app(runtime: IngestRuntime) -> FastAPI:
    app = service_app("ingest", runtime)

    async def events_scope(request: Request) -> Principal:
        return await require_scope(request, runtime.keys, "events")

    async def accounts_scope(request: Request) -> Principal:
        return await require_scope(request, runtime.keys, "accounts")

    @app.middleware("http")
    async def measure(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        LATENCY.labels(path).observe(time.perf_counter() - started)
        REQUESTS.labels(path, str(response.status_code)).inc()
        return response

    def unavailable(exc: BrokerUnavailable) -> JSONResponse:
        return JSONResponse(
            {"error": "unavailable", "message": f"{exc}; retry later"}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=IngestResult,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")}},
            }
        },
        responses={400: {"description": "invalid events, each named by index and field"}, 401: {}, 413: {}, 503: {}},
    )
    async def post_events(request: Request, _principal: Principal = Depends(events_scope)) -> JSONResponse:
        """A batch is all-or-nothing; 202 only once Kafka acknowledged every new event."""
        try:
            events = parse_event_batch(await request.body())
        except BatchRejected as rejected:
            EVENTS.labels("events", "rejected").inc()
            return JSONResponse(rejected.body(), status_code=rejected.status)
        try:
            result = await runtime.service.accept_events(events)
        except BrokerUnavailable as exc:
            EVENTS.labels("events", "unavailable").inc(len(events))
            return unavailable(exc)
        EVENTS.labels("events", "accepted").inc(result.accepted)
        EVENTS.labels("events", "duplicate").inc(result.duplicates)
        return JSONResponse(result.model_dump(), status_code=202)

    @app.put("/v1/accounts/{account_id}", response_model=AccountUpdate, responses={401: {}, 422: {}, 503: {}})
    async def put_account(account_id: str, body: AccountUpsert, _principal: Principal = Depends(accounts_scope)):  # type: ignore[no-untyped-def]
        """Plans, limits, domains and owners, published to the compacted account-updates topic."""
        try:
            return await runtime.service.upsert_account(account_id, body)
        except BrokerUnavailable as exc:
            return unavailable(exc)

    return app
