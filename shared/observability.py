"""Structured logs and the ops endpoints (/metrics, /healthz, /readyz) every service serves."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Protocol

import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest, multiprocess
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]

END_TO_END = Histogram(
    "radar_end_to_end_seconds",
    "Event timestamp to alert delivered, observed by the notifier once per delivered alert",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)


def observe_end_to_end(event_time: datetime, delivered_at: datetime | None = None) -> float:
    """The latency SREs are paged on (design target: p99 < 500 ms); event clocks ahead of ours count as 0."""
    delivered_at = delivered_at or datetime.now(UTC)
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=UTC)
    seconds = max(0.0, (delivered_at - event_time).total_seconds())
    END_TO_END.observe(seconds)
    return seconds


def metrics_exposition() -> bytes:
    """This process's metrics, or all worker processes' when PROMETHEUS_MULTIPROC_DIR is set (prometheus-client's
    multiprocess mode, for a service run as several processes behind one port)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def trace_id_from(headers: dict[str, str] | object) -> str:
    """The W3C `traceparent` trace id, else `X-Request-ID`, else a new id: every log line of a request carries it."""
    get = getattr(headers, "get", lambda _key: None)
    traceparent = get("traceparent") or ""
    parts = traceparent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1].isalnum():
        return parts[1].lower()
    request_id = (get("x-request-id") or "").strip()
    if request_id and len(request_id) <= 128 and request_id.isprintable():
        return request_id
    return uuid.uuid4().hex


# aiokafka logs these at ERROR although it retries them itself: a new consumer group's coordinator is not
# there yet, or moves. They are not failures of ours, and an SRE must not be paged for them.
RETRIED_BY_AIOKAFKA = ("GroupCoordinatorNotAvailableError", "NotCoordinatorForGroupError", "CoordinatorLoadInProgressError")


class DemoteRetriedKafkaErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.name.startswith("aiokafka"):
            message = record.getMessage()
            if any(name in message for name in RETRIED_BY_AIOKAFKA):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(service: str, settings: Settings) -> None:
    """One JSON line per event (console rendering on a terminal), stdlib and library logs included."""
    fmt = settings.radar_log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(DemoteRetriedKafkaErrors())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[
                lambda _l, _m, event_dict: {"service": service, **{k: v for k, v in event_dict.items() if k != "color_message"}},
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.radar_log_level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "httpx", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def ops_router(readiness: ReadinessCheck) -> APIRouter:
    """`/healthz` says the process is alive; `/readyz` says its dependencies answer."""
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(metrics_exposition(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return router


class TraceIdMiddleware:
    """Log lines written while handling a request carry its trace id; the response echoes it. Pure ASGI, not
    `@app.middleware("http")`: that wraps every request in a task group and a streamed response, a measurable
    share of ingest's CPU per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = trace_id_from(Headers(scope=scope))
        header = (b"x-trace-id", trace_id.encode("latin-1"))

        async def send_with_trace_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        with structlog.contextvars.bound_contextvars(trace_id=trace_id):
            await self.app(scope, receive, send_with_trace_id)


class ServiceRuntime(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def readiness(self) -> dict[str, bool]: ...


def service_app(title: str, runtime: ServiceRuntime, trace: bool = True) -> FastAPI:
    """A FastAPI app whose lifespan starts and stops the service's runtime, with the ops endpoints mounted.
    `trace=False`: the caller adds TraceIdMiddleware itself, outside middlewares of its own."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=f"Expansion Radar — {title}", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(runtime.readiness))
    if trace:
        app.add_middleware(TraceIdMiddleware)
    return app
