"""`radar replay`'s file reading and its use of ingest's HTTP contract (an in-memory transport stands in for ingest)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from services.replay import ReplayError, read_records, replay

CSV = """type,id,account_id,timestamp,metric,quantity,user.id,user.email,name,domains,limits.api_calls,arr,owners.csm
account,,acme,,,,,,Acme,acme.com;eu.acme.com,10000,48000,dana@v.example
usage,e1,acme,2026-01-03T00:00:00Z,api_calls,8500,,,,,,,
user_added,u1,acme,2026-01-04T00:00:00Z,,,ann,ann@acme.com,,,,,
"""


def test_csv_rows_become_nested_records_with_numbers(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(CSV)
    records = list(read_records(path))
    assert [line for line, _ in records] == [2, 3, 4]
    assert records[0][1] == {
        "type": "account",
        "account_id": "acme",
        "name": "Acme",
        "domains": ["acme.com", "eu.acme.com"],
        "limits": {"api_calls": 10000},
        "arr": 48000.0,
        "owners": {"csm": "dana@v.example"},
    }
    assert records[1][1]["quantity"] == 8500
    assert records[2][1]["user"] == {"id": "ann", "email": "ann@acme.com"}


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "history.ndjson"
    path.write_text('{"type": "usage"}\n\nnot json\n')
    with pytest.raises(ReplayError, match=r"history.ndjson:3: not valid JSON"):
        list(read_records(path))
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("type,id,quantity\nusage,e1,lots\n")
    with pytest.raises(ReplayError, match=r"bad.csv:2: column 'quantity' should be a number"):
        list(read_records(bad_csv))


class FakeIngest:
    """Answers like ingest: accounts 200, event batches 202 (after one 429), a named 400 for a bad event."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        self.throttled = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.method, request.url.path, body))
        assert request.headers["authorization"] == "Bearer k"
        if request.method == "PUT":
            return httpx.Response(200, json=body)
        if not self.throttled:
            self.throttled = True
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow down"})
        bad = [i for i, event in enumerate(body["events"]) if "timestamp" not in event]
        if bad:
            return httpx.Response(400, json={"errors": [{"index": i, "field": "timestamp", "message": "Field required"} for i in bad]})
        return httpx.Response(202, json={"accepted": len(body["events"]), "duplicates": 0})


def _history(tmp_path: Path, events: list[dict]) -> Path:
    path = tmp_path / "history.ndjson"
    account = {"type": "account", "account_id": "acme", "name": "Acme", "limits": {"api_calls": 100}}
    # the account comes last in the file and is still upserted before any event
    path.write_text("\n".join(json.dumps(r) for r in [*events, account]) + "\n")
    return path


def test_accounts_go_first_then_events_in_batches_through_back_pressure(tmp_path: Path) -> None:
    events = [
        {"id": f"e{i}", "type": "usage", "account_id": "acme", "timestamp": f"2026-01-{i + 1:02d}T00:00:00Z", "metric": "m", "quantity": 1}
        for i in range(5)
    ]
    fake = FakeIngest()
    seen: list[int] = []
    result = asyncio.run(
        replay(_history(tmp_path, events), "http://ingest", "k", batch_size=2, progress=seen.append, transport=httpx.MockTransport(fake))
    )
    assert fake.requests[0][:2] == ("PUT", "/v1/accounts/acme")
    assert "account_id" not in fake.requests[0][2] and "type" not in fake.requests[0][2]
    batches = [body["events"] for method, path, body in fake.requests if path == "/v1/events"]
    # the first batch was refused once with 429 and sent again
    assert [[e["id"] for e in batch] for batch in batches] == [["e0", "e1"], ["e0", "e1"], ["e2", "e3"], ["e4"]]
    assert (result.accounts, result.accepted, result.batches, result.retries) == (1, 5, 3, 1)
    assert seen == [1, 3, 5, 6]


def test_a_refused_event_is_reported_by_its_line(tmp_path: Path) -> None:
    events = [
        {"id": "e1", "type": "usage", "account_id": "acme", "timestamp": "2026-01-01T00:00:00Z", "metric": "m", "quantity": 1},
        {"id": "e2", "type": "usage", "account_id": "acme", "metric": "m", "quantity": 1},
    ]
    with pytest.raises(ReplayError, match=r"history.ndjson:2: timestamp: Field required"):
        asyncio.run(replay(_history(tmp_path, events), "http://ingest", "k", transport=httpx.MockTransport(FakeIngest())))
