"""A request's body before it means anything: content type, size limit, gzip/deflate, JSON."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from services.ingest.domain.errors import BatchRejected

MAX_REQUEST_BYTES = 500 * 1024  # Segment's limit for a batch request
JSON_TYPES = ("application/json",)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str | None, accepted: Sequence[str]) -> str:
    """415 naming what is accepted; returns the media type that matched."""
    kind = media_type(content_type)
    if kind not in accepted:
        got = f"'{kind}'" if kind else "no Content-Type"
        raise BatchRejected(415, f"{got} is not accepted here; send Content-Type: {' or '.join(accepted)}")
    return kind


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo gzip/deflate (Segment's clients may compress) without ever inflating past the request limit."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > MAX_REQUEST_BYTES:
            raise BatchRejected(413, f"request is {len(body)} bytes; the limit is {MAX_REQUEST_BYTES}")
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BatchRejected(415, f"Content-Encoding '{encoding}' is not supported; use gzip, deflate or none")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        plain = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
    except zlib.error as exc:
        raise BatchRejected(400, f"body is not valid {encoding} data: {exc}") from None
    if len(plain) > MAX_REQUEST_BYTES:
        raise BatchRejected(413, f"request is over {MAX_REQUEST_BYTES} bytes once decompressed; the limit is {MAX_REQUEST_BYTES}")
    if not inflater.eof:
        raise BatchRejected(400, f"body is truncated {encoding} data")
    return plain


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchRejected(400, f"body is not valid JSON: {exc}") from None
