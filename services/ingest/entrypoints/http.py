"""Ingest's HTTP entrypoint: thin routes over IngestHandlers, in one router per source; `create_app` assembles them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, cast

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBasic, HTTPBearer
from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.ingest.bootstrap import IngestRuntime
from services.ingest.domain.cloudevents import CLOUDEVENTS_BATCH, CLOUDEVENTS_STRUCTURED, cloudevents_documents, translate_cloudevents
from services.ingest.domain.errors import BatchRejected, BrokerUnavailable, KeyRevoked
from services.ingest.domain.events import parse_native
from services.ingest.domain.request_body import JSON_TYPES, MAX_REQUEST_BYTES, check_content_type, decode_body, load_json
from services.ingest.domain.segment import segment_messages, translate_segment
from services.ingest.entrypoints.middleware import EventsFastPath, RouteTimer
from services.ingest.entrypoints.openapi import (
    DECLARE,
    INTAKE,
    READ,
    SEGMENT_TYPES,
    CloudEventBody,
    SegmentBatchBody,
    SegmentMessage,
    documented_body,
    schema_of,
    with_components,
)
from services.ingest.handlers import IngestHandlers
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

NO_NUL = r"^[^\x00]+$"  # PostgreSQL text cannot hold NUL: refuse it at the edge
EntityId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]

bearer = HTTPBearer(auto_error=False, description="an API key from `radar keys create`")
basic = HTTPBasic(auto_error=False, description="Segment's scheme: the API key as user name, no password")


def runtime_of(request: Request) -> IngestRuntime:
    return cast(IngestRuntime, request.app.state.runtime)


def handlers_of(request: Request) -> IngestHandlers:
    return runtime_of(request).handlers


Handlers = Annotated[IngestHandlers, Depends(handlers_of)]


async def events_scope(request: Request, _token: Any = Depends(bearer)) -> Principal:
    """The key may come from the cache: the claim statement of every intake request rechecks revocation."""
    return await require_scope(request, runtime_of(request).keys, "events", cached=True)


async def accounts_scope(request: Request, _token: Any = Depends(bearer)) -> Principal:
    return await require_scope(request, runtime_of(request).keys, "accounts")


async def reader_scope(request: Request, _token: Any = Depends(bearer)) -> Principal:
    return await require_scope(request, runtime_of(request).keys, ("accounts", "read"))


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


async def read_document(request: Request) -> Any:
    """The body as JSON, undone of its Content-Encoding."""
    return load_json(decode_body(await read_body(request), request.headers.get("content-encoding")))


# ----------------------------------------------------------------------------- errors


async def rejected(_request: Request, exc: BatchRejected) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def unavailable(request: Request, exc: BrokerUnavailable) -> JSONResponse:
    body = {"error": "unavailable", "code": "unavailable", "message": f"{exc}; nothing was accepted, retry later", "errors": []}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(runtime_of(request).config.retry_after_seconds)})


async def key_revoked(request: Request, exc: KeyRevoked) -> JSONResponse:
    if exc.key_id is not None:
        runtime_of(request).keys.forget(exc.key_id)  # out of the auth cache: the next request looks it up (and is refused)
    return JSONResponse({"detail": "unknown or revoked API key"}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="radar"'})


async def database_down(request: Request, exc: DBAPIError) -> JSONResponse:
    """A dropped or refused database connection is retryable (503); anything else stays a 500 to be fixed."""
    if _database_gone(exc):
        return await unavailable(request, BrokerUnavailable("the database did not answer"))
    raise exc


async def database_unreachable(request: Request, _exc: OSError) -> JSONResponse:
    return await unavailable(request, BrokerUnavailable("the database is not reachable"))


def _database_gone(exc: DBAPIError) -> bool:
    """A dropped or refused database connection (retryable), not a bug."""
    return bool(exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError) or isinstance(exc.orig, OSError))


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Any], Awaitable[JSONResponse]]] = {
    BatchRejected: rejected,
    BrokerUnavailable: unavailable,
    KeyRevoked: key_revoked,
    DBAPIError: database_down,
    OSError: database_unreachable,
}


async def answer_error(request: Request, exc: Exception) -> Response | None:
    """What the app's own exception handlers answer (None: none applies, let it propagate), for the fast path,
    looked up the way Starlette does: the nearest class in the exception's MRO with a handler."""
    for kind in type(exc).__mro__:
        handler = request.app.exception_handlers.get(kind)
        if handler is not None:
            answer = handler(request, exc)
            return answer if isinstance(answer, Response) else cast(Response, await answer)
    return None


# ----------------------------------------------------------------------------- native

native = APIRouter(tags=["events"])


@native.post(
    "/v1/events",
    status_code=202,
    response_model=IngestResult,
    openapi_extra=documented_body({"application/json": schema_of(EventBatch)}),
    responses=INTAKE,
)
async def post_events(request: Request, principal: Principal = Depends(events_scope)) -> Response:
    """A batch is all-or-nothing; 202 only once Kafka acknowledged every new event; a replayed id is a duplicate."""
    return await accept_native(request, principal)


async def accept_native(request: Request, principal: Principal) -> Response:
    """POST /v1/events once authenticated: the route above and the fast path (fast_events) both run this."""
    check_content_type(request.headers.get("content-type"), JSON_TYPES)
    try:
        parsed = parse_native(decode_body(await read_body(request), request.headers.get("content-encoding")))
    except BatchRejected:
        EVENTS.labels("events", "rejected").inc()
        raise
    try:
        result = await handlers_of(request).accept_events(parsed, principal.key_id)
    except BrokerUnavailable:
        EVENTS.labels("events", "unavailable").inc(len(parsed.events))
        raise
    EVENTS.labels("events", "accepted").inc(result.accepted)
    EVENTS.labels("events", "duplicate").inc(result.duplicates)
    return Response(orjson.dumps({"accepted": result.accepted, "duplicates": result.duplicates}), 202, media_type="application/json")


async def fast_events(request: Request) -> Response:
    """EventsFastPath's handler: the route's authentication and steps, and the app's answers to its errors."""
    try:
        return await accept_native(request, await require_scope(request, runtime_of(request).keys, "events", cached=True))
    except Exception as exc:
        answer = await answer_error(request, exc)
        if answer is None:
            raise
        return answer


# ----------------------------------------------------------------------------- Segment

segment = APIRouter(tags=["segment"], dependencies=[Depends(bearer), Depends(basic)])


async def accept_segment(request: Request, route: str) -> JSONResponse:
    """The key comes from the Authorization header (Bearer or Basic) or, without one, from the body's writeKey."""
    runtime = runtime_of(request)
    check_content_type(request.headers.get("content-type"), SEGMENT_TYPES)
    token = credentials(request, allow_basic=True)
    if token is not None:
        principal = await require_scope(request, runtime.keys, "events", allow_basic=True, token=token, cached=True)
    document = await read_document(request)
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
    translation = translate_segment(segment_messages(document, route), runtime.config.segment, utcnow())
    if translation.accounts and "accounts" not in principal.scopes:
        raise HTTPException(status_code=403, detail="group calls declare accounts: this key lacks the 'accounts' scope")
    try:
        result = await runtime.handlers.accept_segment(translation, principal.key_id)
    except BrokerUnavailable:
        EVENTS.labels("segment", "unavailable").inc(len(translation.events))
        raise
    EVENTS.labels("segment", "accepted").inc(result.accepted)
    EVENTS.labels("segment", "duplicate").inc(result.duplicates)
    EVENTS.labels("segment", "ignored").inc(result.ignored)
    return JSONResponse(result.model_dump(), status_code=200)


SEGMENT_DOCS: dict[str, tuple[str, type[BaseModel]]] = {
    "batch": ("a batch of calls, as Segment's client libraries send them", SegmentBatchBody),
    "track": ("one track call: mapped to an event by its name (ingest.segment.track)", SegmentMessage),
    "identify": ("one identify call: with an account (context.groupId) and an e-mail it adds a user", SegmentMessage),
    "group": ("one group call: its traits upsert the account groupId (needs the 'accounts' scope too)", SegmentMessage),
}


def _segment_route(route: str, summary: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def handler(request: Request) -> JSONResponse:
        return await accept_segment(request, route)

    handler.__doc__ = f"Segment's tracking API: {summary}. `messageId` is the idempotency key; 200 once Kafka acknowledged."
    return handler


for _route, (_summary, _model) in SEGMENT_DOCS.items():
    segment.add_api_route(
        f"/v1/{_route}",
        _segment_route(_route, _summary),
        methods=["POST"],
        name=f"segment_{_route}",
        status_code=200,
        response_model=SegmentResult,
        openapi_extra=documented_body({kind: schema_of(_model) for kind in SEGMENT_TYPES}),
        responses=INTAKE,
    )


# ----------------------------------------------------------------------------- CloudEvents

cloudevents = APIRouter(tags=["cloudevents"])


@cloudevents.post(
    "/v1/cloudevents",
    status_code=202,
    response_model=SourceIngestResult,
    openapi_extra=documented_body(
        {
            CLOUDEVENTS_STRUCTURED: schema_of(CloudEventBody),
            CLOUDEVENTS_BATCH: {"type": "array", "minItems": 1, "items": schema_of(CloudEventBody)},
        }
    ),
    responses=INTAKE,
)
async def post_cloudevents(request: Request, principal: Principal = Depends(events_scope)) -> JSONResponse:
    """CloudEvents 1.0, structured or batch mode, validated with the CloudEvents SDK; all or nothing."""
    runtime = runtime_of(request)
    kind = check_content_type(request.headers.get("content-type"), (CLOUDEVENTS_STRUCTURED, CLOUDEVENTS_BATCH))
    document = await read_document(request)
    translation = translate_cloudevents(cloudevents_documents(document, kind == CLOUDEVENTS_BATCH), runtime.config.cloudevents, utcnow())
    result = await runtime.handlers.accept_translation(translation, principal.key_id)
    EVENTS.labels("cloudevents", "accepted").inc(result.accepted)
    EVENTS.labels("cloudevents", "duplicate").inc(result.duplicates)
    return JSONResponse(result.model_dump(), status_code=202)


# ----------------------------------------------------------------------------- accounts and plans

accounts = APIRouter(tags=["accounts"])
plans = APIRouter(tags=["plans"])
Declared = TypeVar("Declared", AccountUpdate, PlanUpdate)


@accounts.put("/v1/accounts/{account_id}", response_model=AccountUpdate, responses=DECLARE)
async def put_account(
    account_id: EntityId, body: AccountUpsert, handlers: Handlers, _principal: Principal = Depends(accounts_scope)
) -> AccountUpdate:
    """Plans, limits, domains and owners, published to the compacted account-updates topic (the whole account)."""
    return await handlers.upsert_account(account_id, body)


@accounts.get("/v1/accounts/{account_id}", response_model=AccountUpdate, responses=READ)
async def get_account(account_id: EntityId, handlers: Handlers, _principal: Principal = Depends(reader_scope)) -> AccountUpdate:
    """The account as ingest last published it (PUT or Segment group), from any ingest process."""
    return _declared(await handlers.account(account_id), f"account {account_id!r}")


@plans.put("/v1/plans/{plan_id}", response_model=PlanUpdate, responses=DECLARE)
async def put_plan(plan_id: EntityId, body: PlanUpsert, handlers: Handlers, _principal: Principal = Depends(accounts_scope)) -> PlanUpdate:
    """A plan of the catalog (limits, price = ARR, next plan), published to the compacted plan-updates topic."""
    return await handlers.upsert_plan(plan_id, body)


@plans.get("/v1/plans/{plan_id}", response_model=PlanUpdate, responses=READ)
async def get_plan(plan_id: EntityId, handlers: Handlers, _principal: Principal = Depends(reader_scope)) -> PlanUpdate:
    """The plan as ingest last published it."""
    return _declared(await handlers.plan(plan_id), f"plan {plan_id!r}")


def _declared(found: Declared | None, what: str) -> Declared:
    if found is None:
        raise HTTPException(status_code=404, detail=f"no {what} was declared")
    return found


# ----------------------------------------------------------------------------- the app


def create_app(runtime: IngestRuntime) -> FastAPI:
    app = service_app("ingest", runtime, trace=False)
    app.description = (
        "Send events natively, through Segment's HTTP tracking API or as CloudEvents; declare accounts and plans. "
        "A 2xx means Kafka acknowledged every new event (acks=all)."
    )
    app.state.runtime = runtime
    for router in (native, segment, cloudevents, accounts, plans):
        app.include_router(router)
    for kind, handler in EXCEPTION_HANDLERS.items():
        app.exception_handler(kind)(handler)
    events_route = next(route for route in native.routes if getattr(route, "path", None) == "/v1/events")
    app.add_middleware(EventsFastPath, handle=fast_events, route=events_route)  # innermost of ours: traced and timed
    app.add_middleware(TraceIdMiddleware)
    app.add_middleware(RouteTimer)
    app.openapi_schema = with_components(app.openapi())
    return app
