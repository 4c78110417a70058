"""The fault suite's load, Slack stand-in and counts, shared with `bench/soak.py`.

The load posts usage through ingest at a steady rate, retrying every batch that was not acknowledged (connection
refused, 503, 5xx) with the same event ids, as a product backend with an idempotent client does; every event it
counts as acknowledged got a 2xx. Quiet accounts take one unit an event and never come near their limits, so the
signals worker's usage of each must equal the events acknowledged for it, no more (a replay counted twice) and no
less (an accepted event lost). Planted accounts each get one event taking them to 85 % of their limit: one
`usage_threshold_crossed`, one alert, one Slack message. The stand-in counts Slack messages per alert id (the action
block names it) and per planted account, and can answer 500s or 429s for a while.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson

PLANTED_LIMIT, PLANTED_QUANTITY = 1_000, 850  # 85 %: crosses 80 % and nothing else
QUIET_LIMIT = 1e9
TICK_SECONDS = 0.02
CHANNELS = 4  # Slack webhooks the planted accounts take turns on (the notifier sends each at most one message a second)
RETRYABLE = frozenset({429, 500, 502, 503, 504})
ALERT_BLOCK = re.compile(rb'"block_id":\s*"alert:([^"]+)"')


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- the Slack stand-in


class SlackStandIn:
    """Slack's incoming webhooks on every path: 200 "ok", or for a while the failure it is told to give (a 500, or a
    429 with Retry-After, as Slack rate-limits). Counts messages per alert id and per planted account."""

    def __init__(self, planted_pattern: re.Pattern[bytes]) -> None:
        self.planted_pattern = planted_pattern
        self.by_alert: Counter[str] = Counter()
        self.by_account: Counter[str] = Counter()
        self.first_arrival: dict[str, float] = {}  # planted account -> monotonic time of its first message
        self.unplanted = 0  # messages naming no planted account (digests, summaries)
        self.refused = Counter[int]()
        self.attempts = 0
        self._failing: tuple[float, int, int | None] | None = None  # until (monotonic), status, Retry-After
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the notifier's client expects of Slack

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, text = stand_in.answer(body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, channel: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/{channel}"

    def webhooks(self, channels: int = CHANNELS) -> dict[str, str]:
        """RADAR_SLACK_WEBHOOKS for the notifier: the planted accounts' channels (ch0, ch1, ...) and the default one."""
        return {f"ch{n}": self.url(f"ch{n}") for n in range(channels)} | {"default": self.url("default")}

    def fail_for(self, seconds: float, status: int, retry_after: int | None = None) -> None:
        with self._lock:
            self._failing = (time.monotonic() + seconds, status, retry_after)

    def answer(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.attempts += 1
            if self._failing is not None and time.monotonic() < self._failing[0]:
                _until, status, retry_after = self._failing
                self.refused[status] += 1
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, headers, b"rate_limited" if status == 429 else b"internal_error"
            if not body.strip():
                return 400, {}, b"no_text"
            alert = ALERT_BLOCK.search(body)
            if alert is not None:
                self.by_alert[alert.group(1).decode()] += 1
            planted = self.planted_pattern.search(body)  # the first planted id in a message is the one it is about
            if planted is None:
                self.unplanted += 1
            else:
                account = planted.group().decode()
                self.by_account[account] += 1
                self.first_arrival.setdefault(account, time.monotonic())
        return 200, {}, b"ok"

    def duplicates(self) -> dict[str, int]:
        with self._lock:
            return {alert_id: count for alert_id, count in self.by_alert.items() if count > 1}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- accounts


def account_body(account: str, limit: float, channel: str | None = None) -> dict:
    """A 48k ARR growth plan with a CSM and an AE, which scores into an alerting tier."""
    owners = {"csm": "dana@vendor.example", "ae": "lee@vendor.example"} | ({"slack_channel": channel} if channel else {})
    return {"name": account, "domains": ["example.com"], "plan": "growth", "limits": {"api_calls": limit}, "arr": 48_000, "owners": owners}


async def declare(client: httpx.AsyncClient, ingest: str, signals: str, accounts: dict[str, dict], timeout: float = 90) -> None:
    """PUT each account through ingest, then wait until the signals worker holds its limits: a crossing that
    reached signals before its limit would be no crossing at all."""
    gate = asyncio.Semaphore(16)

    async def put(account: str, body: dict) -> None:
        async with gate:
            response = await client.put(f"{ingest}/v1/accounts/{account}", json=body)
            assert response.status_code == 200, f"PUT /v1/accounts/{account}: {response.status_code} {response.text[:300]}"

    async def known(account: str, limit: float) -> None:
        deadline = time.monotonic() + timeout
        async with gate:
            while True:
                state = await client.get(f"{signals}/v1/state/{account}")
                if state.status_code == 200 and state.json().get("limits", {}).get("api_calls") == limit:
                    return
                assert time.monotonic() < deadline, f"the signals worker did not learn {account}'s limits within {timeout} s"
                await asyncio.sleep(0.1)

    await asyncio.gather(*(put(account, body) for account, body in accounts.items()))
    await asyncio.gather(*(known(account, body["limits"]["api_calls"]) for account, body in accounts.items()))


# ----------------------------------------------------------------------------- the load


@dataclass
class Load:
    """Steady usage through ingest with a planted crossing every `plant_every` seconds; every batch is retried
    with its ids until acknowledged or `give_up_after` seconds have passed."""

    ingest: str
    key: str
    tag: str
    quiet_accounts: int
    planted_accounts: list[str]
    rate: float = 1_000
    plant_every: float = 1.0
    give_up_after: float = 300  # seconds a batch is retried once sent
    max_in_flight: int = 64
    timestamp: str = field(default_factory=iso_now)
    acknowledged: Counter[str] = field(default_factory=Counter)  # quiet account -> events acknowledged
    planted_at: dict[str, float] = field(default_factory=dict)  # planted account -> monotonic time of its 2xx
    statuses: Counter[str] = field(default_factory=Counter)  # every answer, retries included ("error" for no answer)
    retries: int = 0
    unacknowledged: int = 0  # events given up on (never counted as acknowledged)
    sent_events: int = 0
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _running: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _client: httpx.AsyncClient | None = None
    _gate: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.max_in_flight)

    def quiet_account(self, n: int) -> str:
        return f"q{self.tag}-{n}"

    @property
    def acknowledged_events(self) -> int:
        return sum(self.acknowledged.values()) + len(self.planted_at)

    @property
    def pending(self) -> int:
        return len(self._in_flight)

    def start(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(headers={"Authorization": f"Bearer {self.key}"}, timeout=15, limits=limits)
        self._running = asyncio.create_task(self._run())

    async def stop(self, drain_timeout: float = 240) -> None:
        """Stops sending new batches and waits until every batch sent is acknowledged or given up."""
        self._stop.set()
        if self._running is not None:
            await self._running
        deadline = time.monotonic() + drain_timeout
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.wait(set(self._in_flight), timeout=1)
        assert not self._in_flight, f"{len(self._in_flight)} batches still unanswered {drain_timeout} s after the load stopped"
        assert self._client is not None
        await self._client.aclose()

    def assert_held(self, seconds: float) -> None:
        """Nothing given up on, and at least 90 % of `seconds` at the load's rate acknowledged: the fault was ridden
        out under load, not with the load stalled."""
        assert self.unacknowledged == 0, f"{self.unacknowledged} events were given up on: {dict(self.statuses)}"
        expected = self.rate * seconds
        assert self.acknowledged_events >= expected * 0.9, f"{self.acknowledged_events} events acknowledged of {expected:.0f} offered"

    async def abandon(self) -> None:
        """Stops sending and cancels what is still retrying: a test that failed half-way leaves no request behind."""
        self._stop.set()
        tasks = [task for task in (self._running, *self._in_flight) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        start = time.monotonic()
        tick = planted = sequence = 0
        while not self._stop.is_set():
            due = start + tick * TICK_SECONDS
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            count = int(self.rate * (tick + 1) * TICK_SECONDS) - self.sent_events
            events = [self._quiet_event(sequence + n) for n in range(count)]
            sequence += count
            crossing = None
            if planted < len(self.planted_accounts) and due - start >= planted * self.plant_every:
                crossing = self.planted_accounts[planted]
                planted += 1
                events.append(
                    {"id": f"{crossing}-x", "type": "usage", "account_id": crossing, "timestamp": self.timestamp}
                    | {"metric": "api_calls", "quantity": PLANTED_QUANTITY}
                )
            self.sent_events += len(events)
            if events:
                task = asyncio.create_task(self._deliver(events, crossing))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            tick += 1

    def _quiet_event(self, sequence: int) -> dict:
        return {
            "id": f"{self.tag}-{sequence}",
            "type": "usage",
            "account_id": self.quiet_account(sequence % self.quiet_accounts),
            "timestamp": self.timestamp,
            "metric": "api_calls",
            "quantity": 1,
        }

    async def _deliver(self, events: list[dict], crossing: str | None) -> None:
        """Batches past `max_in_flight` wait here rather than in httpx's pool, which scans every waiting request on
        each release: thousands behind a slow ingest would keep this process spinning and sending nothing."""
        async with self._gate:
            await self._deliver_now(events, crossing)

    async def _deliver_now(self, events: list[dict], crossing: str | None) -> None:
        assert self._client is not None
        body = orjson.dumps({"events": events})
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while True:
            wait = min(0.2 * 2**attempt, 2.0)
            try:
                response = await self._client.post(f"{self.ingest}/v1/events", content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError:
                self.statuses["error"] += 1
            else:
                self.statuses[str(response.status_code)] += 1
                if 200 <= response.status_code < 300:
                    answer = response.json()
                    # every id is new to the run, so a duplicate is an event an earlier attempt got produced
                    assert answer["accepted"] + answer["duplicates"] == len(events), f"ingest answered {answer} for {len(events)}"
                    for event in events:
                        if event["account_id"] != crossing:
                            self.acknowledged[event["account_id"]] += 1
                    if crossing is not None:
                        self.planted_at[crossing] = time.monotonic()
                    return
                assert response.status_code in RETRYABLE, f"ingest refused a valid batch: {response.status_code} {response.text[:300]}"
                retry_after = response.headers.get("Retry-After")
                if retry_after and retry_after.isdigit():
                    wait = min(float(retry_after), 5.0)
            attempt += 1
            self.retries += 1
            if time.monotonic() + wait > deadline:
                self.unacknowledged += len(events)
                return
            await asyncio.sleep(wait)


# ----------------------------------------------------------------------------- the counts


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: Callable[[], str]) -> None:
    """`await_for` with a description computed when the deadline passes, so it says how far things got."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what()}")
        await asyncio.sleep(0.25)


async def counted_by_signals(client: httpx.AsyncClient, signals: str, load: Load, timeout: float = 120) -> dict[str, tuple[int, float]]:
    """Waits until the signals worker's usage of every quiet account equals the events acknowledged for it; on the
    deadline fails naming each account whose count is off (acknowledged, counted)."""
    off: dict[str, tuple[int, float]] = {}

    async def usage(account: str) -> float:
        response = await client.get(f"{signals}/v1/state/{account}", timeout=10)
        if response.status_code != 200:
            return -1.0
        metric = response.json().get("usage", {}).get("api_calls")
        return float(metric["used"]) if metric else 0.0

    async def all_counted() -> bool:
        off.clear()
        for n in range(load.quiet_accounts):
            account = load.quiet_account(n)
            try:
                used = await usage(account)
            except httpx.HTTPError:
                used = -1.0
            if used != load.acknowledged[account]:
                off[account] = (load.acknowledged[account], used)
        return not off

    def describe() -> str:
        lost = sum(max(0, acked - used) for acked, used in off.values() if used >= 0)
        extra = sum(max(0, used - acked) for acked, used in off.values())
        return f"signals to count every acknowledged event: {len(off)} accounts off, {lost:.0f} events missing, {extra:.0f} counted twice"

    await wait_until(all_counted, timeout, describe)
    return off


async def delivered_once(slack: SlackStandIn, load: Load, timeout: float = 180) -> None:
    """Waits until every acknowledged crossing has its Slack message; then no alert id and no planted account may
    have had more than one."""

    async def all_delivered() -> bool:
        return all(account in slack.first_arrival for account in load.planted_at)

    def describe() -> str:
        missing = sorted(set(load.planted_at) - set(slack.first_arrival))
        return f"a Slack message for every acknowledged crossing: {len(missing)} of {len(load.planted_at)} missing, e.g. {missing[:5]}"

    await wait_until(all_delivered, timeout, describe)
    assert slack.duplicates() == {}, f"Slack got the same alert more than once: {slack.duplicates()}"
    repeated = {account: count for account, count in slack.by_account.items() if count > 1}
    assert repeated == {}, f"Slack got more than one message for a crossing: {repeated}"


async def recovery_seconds(slack: SlackStandIn, load: Load, since: float, timeout: float) -> float:
    """Seconds from `since` (the fault's end) until a crossing acknowledged after it reached Slack: the pipeline is
    back when a fresh crossing goes all the way through."""

    async def fresh_delivered() -> bool:
        return any(at >= since and account in slack.first_arrival for account, at in list(load.planted_at.items()))

    await wait_until(fresh_delivered, timeout, lambda: f"a crossing acknowledged after the fault to reach Slack within {timeout} s")
    return (
        min(slack.first_arrival[account] for account, at in load.planted_at.items() if at >= since and account in slack.first_arrival)
        - since
    )


async def nothing_lost_or_repeated(signals: str, slack: SlackStandIn, load: Load, seconds: float) -> None:
    """The suite's verdict once the load has stopped: every acknowledged event counted once by signals, every
    crossing in Slack once, and the load held for `seconds`."""
    async with httpx.AsyncClient() as client:
        await counted_by_signals(client, signals, load)
    await delivered_once(slack, load)
    load.assert_held(seconds)
