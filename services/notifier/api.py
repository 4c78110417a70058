"""The notifier's HTTP entrypoint: ops endpoints (the actions API arrives with its own issue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.notifier.bootstrap import NotifierRuntime
from shared.observability import ops_router


def create_app(runtime: NotifierRuntime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Expansion Radar — notifier", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(runtime.readiness))
    return app
