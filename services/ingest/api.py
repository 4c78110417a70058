"""Ingest's HTTP entrypoint: thin routes over IngestService, and the OpenAPI description of every answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBasic, HTTPBearer
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.ingest.adapters import BrokerUnavailable, KeyRevoked
from services.ingest.bootstrap import IngestRuntime
from services.ingest.domain import JSON_TYPES, MAX_REQUEST_BYTES, BatchRejected, check_content_type, decode_body, load_json, parse_native
from services.ingest.sources import (
    CLOUDEVENTS_BATCH,
    CLOUDEVENTS_STRUCTURED,
    cloudevents_documents,
    segment_messages,
    translate_cloudevents,
    translate_segment,
)
from shared.auth import Principal, credentials, require_scope
from shared.observability import TraceIdMiddleware, service_app
from shared.schemas import (
    AccountUpdate,
    AccountUpsert,
    EventBatch,
    IngestResult,
    PlanUpdate,
    PlanUpsert,
    SegmentResult,
    SourceIngestResult,
    utcnow,
)

EVENTS = Counter("radar_ingest_events", "Events received, by outcome", ["route", "outcome"])
REQUESTS = Counter("radar_ingest_requests", "HTTP requests, by route and status", ["route", "status"])
LATENCY = Histogram("radar_ingest_request_duration_seconds", "Request latency", ["route"])

SEGMENT_TYPES = (*JSON_TYPES, "text/plain")  # analytics.js posts text/plain to skip the CORS preflight
NO_NUL = r"^[^\x00]+$"  # PostgreSQL text cannot hold NUL: refuse it at the edge
EntityId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]


# ----------------------------------------------------------------------------- documented shapes


class FieldErrorBody(BaseModel):
    index: int | None = Field(description="position of the bad event/message in the request; null for the request itself")
    field: str = Field(description="dotted path of the bad field")
    message: str


class ErrorBody(BaseModel):
    error: str
    code: str
    message: str
    errors: list[FieldErrorBody] = []


class Detail(BaseModel):
    detail: str


class SegmentMessage(BaseModel):
    """One Segment call (track, identify, group; page, screen and alias are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")
    type: str | None = Field(default=None, description="track | identify | group | page | screen | alias")
    messageId: str | None = Field(default=None, description="the idempotency key")
    userId: str | None = None
    anonymousId: str | None = None
    event: str | None = Field(default=None, description="track: the event name the config maps")
    groupId: str | None = Field(default=None, description="group: the account id")
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = Field(default=None, description="context.groupId names the account of track/identify")
    timestamp: str | None = None


class SegmentBatchBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    batch: list[SegmentMessage] = Field(min_length=1)
    sentAt: str | None = None
    context: dict[str, Any] | None = None
    writeKey: str | None = Field(default=None, description="the key, when no Authorization header is sent")


class CloudEventBody(BaseModel):
    """A CloudEvents 1.0 event in structured mode; `subject` is the account id."""

    model_config = ConfigDict(extra="allow")
    specversion: str = Field(description="1.0")
    id: str
    source: str
    type: str = Field(description="io.expansionradar.<event type> (fields in data) or a type mapped in the config")
    subject: str | None = Field(default=None, description="the account id (required)")
    time: str | None = None
    datacontenttype: str | None = None
    data: dict[str, Any] | None = None


_COMPONENTS: dict[str, Any] = {}  # models referenced by hand-written request bodies, hoisted into the document


def _schema(model: type[BaseModel] | Any) -> dict[str, Any]:
    schema = dict(model.model_json_schema(ref_template="#/components/schemas/{model}"))
    _COMPONENTS.update(schema.pop("$defs", {}))
    return schema


def _with_components(app: FastAPI) -> None:
    """Request bodies are read raw (one parse, fast path), so their schemas are declared by hand: register the
    models they refer to, or the document would point at nothing."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _COMPONENTS.items():
                schemas.setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _body(content: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {kind: {"schema": schema} for kind, schema in content.items()}}}


def _err(description: str, model: type[BaseModel] = ErrorBody, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "model": model}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
    return answer


AUTH = {
    401: _err("missing, unknown or revoked API key", Detail),
    403: _err("the key lacks the scope this route needs", Detail),
    429: _err("the key is over its rate limit", Detail, retry_after=True),
}
BUSY = {503: _err("Kafka (or the database) did not answer in time, or ingest is saturated: nothing was accepted; retry", retry_after=True)}
INTAKE = {
    **AUTH,
    400: _err("invalid request: every bad event named by index and field; nothing was accepted"),
    413: _err("over 500 KB a request or 32 KB an event"),
    415: _err("wrong Content-Type or Content-Encoding"),
    **BUSY,
}


class _RouteTimer:
    """Pure ASGI (not BaseHTTPMiddleware): latency and status per route at a fraction of the cost."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def record_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(path).observe(time.perf_counter() - started)
            REQUESTS.labels(path, str(status[0])).inc()


async def read_body(request: Request) -> bytes:
    """Never buffers more than the limit: a body announced or streamed past it is refused with 413."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise BatchRejected(413, f"request is {declared} bytes; the limit is {MAX_REQUEST_BYTES}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise BatchRejected(413, f"request is over {MAX_REQUEST_BYTES} bytes; the limit is {MAX_REQUEST_BYTES}")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(runtime: IngestRuntime) -> FastAPI:
    app = service_app("ingest", runtime, trace=False)
    app.description = (
        "Send events natively, through Segment's HTTP tracking API or as CloudEvents; declare accounts and plans. "
        "A 2xx means Kafka acknowledged every new event (acks=all)."
    )
    service = runtime.service
    config = runtime.config
    retry_after = str(config.retry_after_seconds)
    bearer = HTTPBearer(auto_error=False, description="an API key from `radar keys create`")
    basic = HTTPBasic(auto_error=False, description="Segment's scheme: the API key as user name, no password")

    async def answer_error(request: Request, exc: Exception) -> Response | None:
        """What the app's own exception handlers answer (None: none applies, let it propagate), for the fast path,
        looked up the way Starlette does: the nearest class in the exception's MRO with a handler."""
        for kind in type(exc).__mro__:
            handler = app.exception_handlers.get(kind)
            if handler is not None:
                return await handler(request, exc)
        return None

    @app.exception_handler(BatchRejected)
    async def rejected(_request: Request, exc: BatchRejected) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(BrokerUnavailable)
    async def unavailable(_request: Request, exc: BrokerUnavailable) -> JSONResponse:
        body = {"error": "unavailable", "code": "unavailable", "message": f"{exc}; nothing was accepted, retry later", "errors": []}
        return JSONResponse(body, status_code=503, headers={"Retry-After": retry_after})

    @app.exception_handler(KeyRevoked)
    async def key_revoked(_request: Request, exc: KeyRevoked) -> JSONResponse:
        runtime.keys.forget(exc.key_id)  # out of the auth cache: the next request looks it up (and is refused)
        return JSONResponse({"detail": "unknown or revoked API key"}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="radar"'})

    @app.exception_handler(DBAPIError)
    async def database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        """A dropped or refused database connection is retryable (503); anything else stays a 500 to be fixed."""
        if _database_gone(exc):
            return await unavailable(request, BrokerUnavailable("the database did not answer"))
        raise exc

    @app.exception_handler(OSError)
    async def database_unreachable(request: Request, _exc: OSError) -> JSONResponse:
        return await unavailable(request, BrokerUnavailable("the database is not reachable"))

    async def events_scope(request: Request, _token: Any = Depends(bearer)) -> Principal:
        """The key may come from the cache: the claim statement of every intake request rechecks revocation."""
        return await require_scope(request, runtime.keys, "events", cached=True)

    async def accounts_scope(request: Request, _token: Any = Depends(bearer)) -> Principal:
        return await require_scope(request, runtime.keys, "accounts")

    async def reader_scope(request: Request, _token: Any = Depends(bearer)) -> Principal:
        return await require_scope(request, runtime.keys, ("accounts", "read"))

    # ------------------------------------------------------------------------- native

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=IngestResult,
        tags=["events"],
        openapi_extra=_body({"application/json": _schema(EventBatch)}),
        responses=INTAKE,
    )
    async def post_events(request: Request, principal: Principal = Depends(events_scope)) -> Response:
        """A batch is all-or-nothing; 202 only once Kafka acknowledged every new event; a replayed id is a duplicate."""
        return await accept_native(request, principal)

    async def accept_native(request: Request, principal: Principal) -> Response:
        """POST /v1/events once authenticated: the route above and the fast path (_EventsFastPath) both run this."""
        check_content_type(request.headers.get("content-type"), JSON_TYPES)
        try:
            parsed = parse_native(decode_body(await read_body(request), request.headers.get("content-encoding")))
        except BatchRejected:
            EVENTS.labels("events", "rejected").inc()
            raise
        try:
            result = await service.accept_events(parsed, principal.key_id)
        except BrokerUnavailable:
            EVENTS.labels("events", "unavailable").inc(len(parsed.events))
            raise
        EVENTS.labels("events", "accepted").inc(result.accepted)
        EVENTS.labels("events", "duplicate").inc(result.duplicates)
        return Response(orjson.dumps({"accepted": result.accepted, "duplicates": result.duplicates}), 202, media_type="application/json")

    # ------------------------------------------------------------------------- Segment

    async def segment(request: Request, route: str) -> JSONResponse:
        check_content_type(request.headers.get("content-type"), SEGMENT_TYPES)
        token = credentials(request, allow_basic=True)
        if token is not None:
            principal = await require_scope(request, runtime.keys, "events", allow_basic=True, token=token, cached=True)
        document = load_json(decode_body(await read_body(request), request.headers.get("content-encoding")))
        if token is None:
            write_key = document.get("writeKey") if isinstance(document, dict) else None
            principal = await require_scope(
                request,
                runtime.keys,
                "events",
                allow_basic=True,
                token=write_key if isinstance(write_key, str) and write_key else None,
                cached=True,
            )
        translation = translate_segment(segment_messages(document, route), config.segment, utcnow())
        if translation.accounts and "accounts" not in principal.scopes:
            raise HTTPException(status_code=403, detail="group calls declare accounts: this key lacks the 'accounts' scope")
        try:
            result = await service.accept_segment(translation, principal.key_id)
        except BrokerUnavailable:
            EVENTS.labels("segment", "unavailable").inc(len(translation.events))
            raise
        EVENTS.labels("segment", "accepted").inc(result.accepted)
        EVENTS.labels("segment", "duplicate").inc(result.duplicates)
        EVENTS.labels("segment", "ignored").inc(result.ignored)
        return JSONResponse(result.model_dump(), status_code=200)

    segment_security = [Depends(bearer), Depends(basic)]
    segment_docs = {
        "batch": ("a batch of calls, as Segment's client libraries send them", SegmentBatchBody),
        "track": ("one track call: mapped to an event by its name (ingest.segment.track)", SegmentMessage),
        "identify": ("one identify call: with an account (context.groupId) and an e-mail it adds a user", SegmentMessage),
        "group": ("one group call: its traits upsert the account groupId (needs the 'accounts' scope too)", SegmentMessage),
    }

    def segment_route(route: str) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def handler(request: Request) -> JSONResponse:
            return await segment(request, route)

        return handler

    for route, (summary, model) in segment_docs.items():
        handler = segment_route(route)
        handler.__doc__ = f"Segment's tracking API: {summary}. `messageId` is the idempotency key; 200 once Kafka acknowledged."
        app.add_api_route(
            f"/v1/{route}",
            handler,
            methods=["POST"],
            name=f"segment_{route}",
            status_code=200,
            response_model=SegmentResult,
            tags=["segment"],
            dependencies=segment_security,
            openapi_extra=_body({kind: _schema(model) for kind in SEGMENT_TYPES}),
            responses=INTAKE,
        )

    # ------------------------------------------------------------------------- CloudEvents

    @app.post(
        "/v1/cloudevents",
        status_code=202,
        response_model=SourceIngestResult,
        tags=["cloudevents"],
        openapi_extra=_body(
            {
                CLOUDEVENTS_STRUCTURED: _schema(CloudEventBody),
                CLOUDEVENTS_BATCH: {"type": "array", "minItems": 1, "items": _schema(CloudEventBody)},
            }
        ),
        responses=INTAKE,
    )
    async def post_cloudevents(request: Request, principal: Principal = Depends(events_scope)) -> JSONResponse:
        """CloudEvents 1.0, structured or batch mode, validated with the CloudEvents SDK; all or nothing."""
        kind = check_content_type(request.headers.get("content-type"), (CLOUDEVENTS_STRUCTURED, CLOUDEVENTS_BATCH))
        document = load_json(decode_body(await read_body(request), request.headers.get("content-encoding")))
        translation = translate_cloudevents(cloudevents_documents(document, kind == CLOUDEVENTS_BATCH), config.cloudevents, utcnow())
        result = await service.accept_translation(translation, principal.key_id)
        EVENTS.labels("cloudevents", "accepted").inc(result.accepted)
        EVENTS.labels("cloudevents", "duplicate").inc(result.duplicates)
        return JSONResponse(result.model_dump(), status_code=202)

    # ------------------------------------------------------------------------- accounts and plans

    declare_errors = {**AUTH, 400: _err("the body is not JSON (not even UTF-8)", Detail), **BUSY}
    read_errors = {**AUTH, 404: _err("nothing was declared under this id", Detail)}

    @app.put("/v1/accounts/{account_id}", response_model=AccountUpdate, tags=["accounts"], responses=declare_errors)
    async def put_account(account_id: EntityId, body: AccountUpsert, _principal: Principal = Depends(accounts_scope)) -> AccountUpdate:
        """Plans, limits, domains and owners, published to the compacted account-updates topic (the whole account)."""
        return await service.upsert_account(account_id, body)

    @app.get("/v1/accounts/{account_id}", response_model=AccountUpdate, tags=["accounts"], responses=read_errors)
    async def get_account(account_id: EntityId, _principal: Principal = Depends(reader_scope)) -> AccountUpdate:
        """The account as ingest last published it (PUT or Segment group), from any ingest process."""
        found = await service.account(account_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no account {account_id!r} was declared")
        return found

    @app.put("/v1/plans/{plan_id}", response_model=PlanUpdate, tags=["plans"], responses=declare_errors)
    async def put_plan(plan_id: EntityId, body: PlanUpsert, _principal: Principal = Depends(accounts_scope)) -> PlanUpdate:
        """A plan of the catalog (limits, price = ARR, next plan), published to the compacted plan-updates topic."""
        return await service.upsert_plan(plan_id, body)

    @app.get("/v1/plans/{plan_id}", response_model=PlanUpdate, tags=["plans"], responses=read_errors)
    async def get_plan(plan_id: EntityId, _principal: Principal = Depends(reader_scope)) -> PlanUpdate:
        """The plan as ingest last published it."""
        found = await service.plan(plan_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no plan {plan_id!r} was declared")
        return found

    async def fast_events(request: Request) -> Response:
        try:
            return await accept_native(request, await require_scope(request, runtime.keys, "events", cached=True))
        except Exception as exc:
            answer = await answer_error(request, exc)
            if answer is None:
                raise
            return answer

    events_route = next(route for route in app.routes if getattr(route, "path", None) == "/v1/events")
    app.add_middleware(_EventsFastPath, handle=fast_events, route=events_route)  # innermost of ours: traced and timed
    app.add_middleware(TraceIdMiddleware)
    app.add_middleware(_RouteTimer)
    _with_components(app)
    return app


def _database_gone(exc: DBAPIError) -> bool:
    """A dropped or refused database connection (retryable), not a bug."""
    return bool(exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError) or isinstance(exc.orig, OSError))


class _EventsFastPath:
    """`POST /v1/events` straight from ASGI: the same authentication, steps and answers as the documented route
    (which stays, for the OpenAPI document), without FastAPI's routing, dependency solving and exception
    middleware layers, which cost ingest's hottest route a fifth of its CPU per request."""

    def __init__(self, app: Callable[..., Awaitable[None]], handle: Callable[[Request], Awaitable[Response]], route: Any) -> None:
        self.app = app
        self.handle = handle
        self.route = route

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/events" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # what _RouteTimer labels the request with
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)
