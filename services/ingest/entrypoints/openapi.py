"""The OpenAPI description of ingest's routes: request bodies are read raw (one parse, fast path), so their schemas
and every documented answer are declared here by hand."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.ingest.domain.request_body import JSON_TYPES

Responses = dict[int | str, dict[str, Any]]
SEGMENT_TYPES = (*JSON_TYPES, "text/plain")  # analytics.js posts text/plain to skip the CORS preflight


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


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, its nested models hoisted for `with_components`."""
    schema = dict(model.model_json_schema(ref_template="#/components/schemas/{model}"))
    _COMPONENTS.update(schema.pop("$defs", {}))
    return schema


def with_components(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the models the hand-written request bodies refer to, or it would point at nothing."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _COMPONENTS.items():
        schemas.setdefault(name, schema)
    return document


def documented_body(content: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {kind: {"schema": schema} for kind, schema in content.items()}}}


def _err(description: str, model: type[BaseModel] = ErrorBody, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "model": model}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
    return answer


AUTH: Responses = {
    401: _err("missing, unknown or revoked API key", Detail),
    403: _err("the key lacks the scope this route needs", Detail),
    429: _err("the key is over its rate limit", Detail, retry_after=True),
}
BUSY: Responses = {
    503: _err("Kafka (or the database) did not answer in time, or ingest is saturated: nothing was accepted; retry", retry_after=True)
}
INTAKE: Responses = {
    **AUTH,
    400: _err("invalid request: every bad event named by index and field; nothing was accepted"),
    413: _err("over 500 KB a request or 32 KB an event"),
    415: _err("wrong Content-Type or Content-Encoding"),
    **BUSY,
}
DECLARE: Responses = {**AUTH, 400: _err("the body is not JSON (not even UTF-8)", Detail), **BUSY}
READ: Responses = {**AUTH, 404: _err("nothing was declared under this id", Detail)}
