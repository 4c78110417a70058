"""`radar replay FILE`: a historical export (NDJSON or CSV) through the real pipeline, over ingest's public
HTTP contract only (`PUT /v1/accounts/{id}`, `PUT /v1/plans/{id}`, `POST /v1/events`), so a company sees its
past year scored and measured on day one.

Records with `"type": "account"` (or `"plan"`) are upserted first, in one pass over the file, then the events
follow in batches in file order (`sort=True`: by timestamp). Signals fire in event time, so a history in time
order produces the signals it would have produced live. Ingest deduplicates by event id: a replay stopped
half-way can simply be run again.

CSV: one record per row, the header names the fields; nested fields by dotted names (`user.email`,
`owners.csm`, `limits.api_calls`); `domains` split on `;`; empty cells are left out; numbers and booleans
are converted where the field is numeric.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

UPSERT_TYPES = ("account", "plan")
MAX_REQUEST_BYTES = 450_000  # ingest's limit is 500 KB a request: keep headroom for the envelope
NUMERIC = {"quantity", "value", "score", "arr_before", "arr_after", "arr", "price"}
NUMERIC_PREFIXES = ("limits.",)
BOOLEAN = {"gated"}
LIST_FIELDS = {"domains"}
RETRIES = 8


class ReplayError(Exception):
    """Stops the replay; the message names the file line and what was wrong."""


@dataclass
class ReplayResult:
    accepted: int = 0
    duplicates: int = 0
    accounts: int = 0
    plans: int = 0
    batches: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading


def _csv_value(name: str, text: str) -> Any:
    if name in NUMERIC or name.startswith(NUMERIC_PREFIXES):
        number = float(text)
        return int(number) if number.is_integer() and name not in ("arr", "arr_before", "arr_after", "price") else number
    if name in BOOLEAN:
        return text.strip().lower() in ("1", "true", "yes", "y")
    if name in LIST_FIELDS:
        return [part.strip() for part in text.replace("|", ";").split(";") if part.strip()]
    return text


def _nest(row: dict[str, str], where: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, text in row.items():
        if name is None:
            raise ReplayError(f"{where}: more cells than the header has columns")
        if text is None or text == "":
            continue
        try:
            value = _csv_value(name, text)
        except ValueError:
            raise ReplayError(f"{where}: column {name!r} should be a number, got {text!r}") from None
        target = record
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return record


def read_records(path: Path, file_format: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each record in the file; a bad line raises ReplayError naming it."""
    kind = file_format or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
    if kind not in ("csv", "ndjson"):
        raise ReplayError(f"--format: {kind!r} is not a format; use ndjson or csv")
    with path.open(encoding="utf-8", newline="") as handle:
        if kind == "csv":
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "type" not in reader.fieldnames:
                raise ReplayError(f"{path}:1: the CSV header needs a 'type' column (and the event or account fields)")
            for row in reader:
                yield reader.line_num, _nest(row, f"{path}:{reader.line_num}")
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ReplayError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise ReplayError(f"{path}:{number}: expected a JSON object per line")
            yield number, record


def count_records(path: Path, file_format: str | None = None) -> int:
    return sum(1 for _ in read_records(path, file_format))


# ----------------------------------------------------------------------------- sending


class Ingest:
    """Ingest's HTTP contract with retries: 429/503 wait for Retry-After, other 5xx and network errors back off."""

    def __init__(self, client: httpx.AsyncClient, result: ReplayResult) -> None:
        self.client = client
        self.result = result

    async def send(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        delay = 0.5
        for attempt in range(RETRIES):
            try:
                response = await self.client.request(method, path, json=body)
            except httpx.TransportError as exc:
                if attempt == RETRIES - 1:
                    raise ReplayError(f"ingest at {self.client.base_url} is unreachable: {exc}") from None
                response = None
            if response is not None and response.status_code not in (429, 500, 502, 503, 504):
                return response
            wait = delay
            if response is not None and response.headers.get("retry-after", "").isdigit():
                wait = float(response.headers["retry-after"])
            self.result.retries += 1
            await asyncio.sleep(min(wait, 30))
            delay = min(delay * 2, 10)
        raise ReplayError(f"ingest kept answering {response.status_code if response is not None else 'nothing'} for {path}; try later")


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return json.dumps(body)[:1000]


async def _upsert(ingest: Ingest, line: int, record: dict[str, Any], where: str) -> None:
    kind = record.pop("type")
    key = "account_id" if kind == "account" else "plan_id"
    identifier = record.pop(key, None) or record.pop("id", None)
    if not identifier:
        raise ReplayError(f"{where}:{line}: a {kind} record needs {key!r}")
    response = await ingest.send("PUT", f"/v1/{kind}s/{identifier}", record)
    if response.status_code == 401 or response.status_code == 403:
        raise ReplayError(f"ingest refused the key ({response.status_code}): it needs the 'accounts' scope")
    if response.status_code >= 300:
        raise ReplayError(f"{where}:{line}: ingest refused {kind} {identifier!r} ({response.status_code}): {_problem(response)}")


async def _post_batch(ingest: Ingest, batch: list[tuple[int, dict[str, Any]]], where: str) -> None:
    response = await ingest.send("POST", "/v1/events", {"events": [record for _, record in batch]})
    if response.status_code == 401 or response.status_code == 403:
        raise ReplayError(f"ingest refused the key ({response.status_code}): it needs the 'events' scope")
    if response.status_code == 400 or response.status_code == 413:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        lines = [
            f"{where}:{batch[e['index']][0]}: {e.get('field')}: {e.get('message')}"
            for e in errors
            if isinstance(e, dict) and isinstance(e.get("index"), int) and 0 <= e["index"] < len(batch)
        ]
        raise ReplayError("ingest refused a batch:\n" + ("\n".join(lines) if lines else _problem(response)))
    if response.status_code != 202:
        raise ReplayError(f"ingest answered {response.status_code} to a batch: {_problem(response)}")
    body = response.json()
    ingest.result.accepted += int(body.get("accepted", 0))
    ingest.result.duplicates += int(body.get("duplicates", 0))
    ingest.result.batches += 1


async def replay(
    path: Path,
    url: str,
    key: str,
    *,
    file_format: str | None = None,
    batch_size: int = 500,
    sort: bool = False,
    progress: Callable[[int], None] = lambda done: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReplayResult:
    """`progress(n)` is called with the number of records sent so far."""
    result = ReplayResult()
    where = str(path)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, transport=transport) as client:
        ingest = Ingest(client, result)
        done = 0
        for line, record in read_records(path, file_format):
            if record.get("type") in UPSERT_TYPES:
                kind = record["type"]
                await _upsert(ingest, line, dict(record), where)
                result.accounts += kind == "account"
                result.plans += kind == "plan"
                done += 1
                progress(done)
        events: Iterator[tuple[int, dict[str, Any]]] = (
            (line, record) for line, record in read_records(path, file_format) if record.get("type") not in UPSERT_TYPES
        )
        if sort:
            events = iter(sorted(events, key=lambda item: str(item[1].get("timestamp", ""))))
        batch: list[tuple[int, dict[str, Any]]] = []
        size = 0
        for line, record in events:
            encoded = len(json.dumps(record))
            if batch and (len(batch) >= batch_size or size + encoded > MAX_REQUEST_BYTES):
                await _post_batch(ingest, batch, where)
                done += len(batch)
                progress(done)
                batch, size = [], 0
            batch.append((line, record))
            size += encoded + 1
        if batch:
            await _post_batch(ingest, batch, where)
            done += len(batch)
            progress(done)
    return result
