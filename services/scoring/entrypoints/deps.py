"""What scoring's HTTP routes (the read API, outcomes' routes, the console) take from the request: the runtime the
app was built with, and the caller's bearer key checked for the `read` scope."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from fastapi import Request

from shared.auth import Principal, require_scope

if TYPE_CHECKING:
    from services.scoring.bootstrap import ScoringRuntime


def runtime_of(request: Request) -> ScoringRuntime:
    return cast("ScoringRuntime", request.app.state.runtime)


async def reader(request: Request) -> Principal:
    return await require_scope(request, runtime_of(request).keys, "read")
