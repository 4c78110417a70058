"""The notifier's HTTP entrypoint: ops endpoints (the actions API arrives with its own issue)."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifier.bootstrap import NotifierRuntime
from shared.observability import service_app


def create_app(runtime: NotifierRuntime) -> FastAPI:
    return service_app("notifier", runtime)
