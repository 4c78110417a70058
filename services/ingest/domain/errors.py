"""Why ingest refuses a request: the client's fault (BatchRejected, named by index and field) or a retryable outage
(BrokerUnavailable and its kinds, KeyRevoked). Each maps to one HTTP answer in entrypoints/http.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "message": self.message}


_ERROR_CODES = {400: "invalid_batch", 413: "too_large", 415: "unsupported_media_type"}


@dataclass
class BatchRejected(Exception):
    """The whole request is refused: 400 bad content, 413 too large, 415 wrong content type or encoding."""

    status: int
    message: str
    errors: list[FieldError] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        code = _ERROR_CODES.get(self.status, "rejected")
        # `code` as well as `error`: Segment's clients read `code` and `message` from an error answer
        return {"error": code, "code": code, "message": self.message, "errors": [error.as_dict() for error in self.errors]}


def field_path(location: Iterable[int | str]) -> str:
    # pydantic puts the discriminator's value first in the location of a tagged union: drop it
    parts = [str(part) for part in location]
    return ".".join(parts[1:] if len(parts) > 1 else parts) or "(event)"


def event_errors(index: int, exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(index, "type" if err["type"].startswith("union_tag") else field_path(err["loc"]), err["msg"])
        for err in exc.errors(include_url=False)
    ]


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge in time (or ingest is saturated): the client must retry, nothing was promised."""


class Undelivered(BrokerUnavailable):
    """Kafka took some of a request's events and definitively refused the others: `positions` (indices into the
    events given) were not delivered; every other one was, and a retry must find it produced, not produce it again."""

    def __init__(self, positions: set[int], cause: str) -> None:
        super().__init__(f"Kafka took only part of the request ({len(positions)} events not delivered): {cause}")
        self.positions = positions


class PartlyDelivered(BrokerUnavailable):
    """`Undelivered` in the claim's terms: the ids to release; the claim's other ids are produced."""

    def __init__(self, undelivered: list[str], cause: BrokerUnavailable) -> None:
        super().__init__(str(cause))
        self.undelivered = undelivered


class OutcomeUnknown(BrokerUnavailable):
    """The producer still holds records past every deadline: they may yet land, so their claim is neither released
    nor marked (a retry gets 503 until its lease runs out)."""


class KeyRevoked(Exception):
    """The request's key was revoked (or deleted) after it was authenticated: nothing was claimed."""

    def __init__(self, key_id: int | None) -> None:
        super().__init__(f"API key {key_id} is revoked")
        self.key_id = key_id
