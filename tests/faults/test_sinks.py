"""The notifier's receivers failing mid-stream, under load: Slack answering 500s then 429s for two minutes, and the
alert log's disk full. Alerts wait and then go out, each exactly once: an outage is not a reason for the DLQ, and a
failed write leaves no torn line behind."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.faults.conftest import SERVICES, FaultStack
from tests.faults.harness import Load, counted_by_signals, nothing_lost_or_repeated, recovery_seconds, wait_until

RATE = 1_000  # events/s

# Slack: 110 s of 500s, then 10 s of 429s. The old budget (8 attempts, backoff 1 s doubling) sent a delivery to the
# DLQ when its 8th attempt failed, 64-127 s after its first, later when the paced sender is busy with a backlog: in
# runs of this test one alert of ~125 got to 8 failures (lost under the old budget; the unit tests pin the rule)
BEFORE_S, ERRORS_S, RATE_LIMITED_S, RETRY_AFTER_S, SLACK_AFTER_S = 15, 110, 10, 5, 30
# failures end -> a fresh crossing in Slack. The alerts that waited go first, paced at one message a second per
# webhook (4 webhooks), after the last Retry-After (5 s): 89 waiting alerts took 34 s, 116 took 43 s, and at most
# ~135 wait; the bound leaves room for a busy machine
SLACK_RECOVERY_BOUND_S = 90
# failures end -> every crossing acknowledged before it in Slack: without pulling backed-off retries forward on the
# first success this took up to the 128-256 s backoff step of an alert 8 attempts in
SLACK_DRAINED_BOUND_S = 90

# the alert log: a tmpfs filled up for 30 s while crossings keep coming
DISK_BEFORE_S, DISK_FULL_S, DISK_AFTER_S = 15, 30, 20
TMPFS_SIZE = "1m"  # ~70 alert lines of ~1.6 KB fit with room to spare once the filler is gone
# filler deleted -> a fresh crossing in the log: a full disk is retried every second (ConsoleChannel.disk_full_retry_s)
DISK_RECOVERY_BOUND_S = 15


def notifier_metric(stack: FaultStack, name: str, **labels: str) -> float:
    """A counter of the notifier's /metrics summed over the series matching `labels` (0 when there is none)."""
    text = httpx.get(stack.url("notifier", "/metrics"), timeout=10).text
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        series = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(series.get(key) == value for key, value in labels.items()):
            total += float(match.group(2))
    return total


# ----------------------------------------------------------------------------- Slack down


@pytest.mark.timeout(900)
async def test_slack_500s_then_429s_for_two_minutes_delay_alerts_but_lose_or_repeat_none(
    fault_stack_factory: Callable[..., FaultStack], database_url: str, running_loads: list[Load]
) -> None:
    stack = fault_stack_factory(database_url)
    outage_s = ERRORS_S + RATE_LIMITED_S
    load = stack.load(RATE, quiet_accounts=40, planted=BEFORE_S + outage_s + SLACK_AFTER_S + 5)
    await stack.declare(load)
    load.start()
    running_loads.append(load)
    await asyncio.sleep(BEFORE_S)  # the load runs meanwhile: these waits set its length, not an order

    stack.slack.fail_for(ERRORS_S, 500)
    await asyncio.sleep(ERRORS_S)
    stack.slack.fail_for(RATE_LIMITED_S, 429, RETRY_AFTER_S)
    await asyncio.sleep(RATE_LIMITED_S)
    failures_ended = time.monotonic()
    waited = [account for account, at in load.planted_at.items() if at < failures_ended]
    recovered = await recovery_seconds(stack.slack, load, failures_ended, SLACK_RECOVERY_BOUND_S)

    async def all_waiting_delivered() -> bool:
        return all(account in stack.slack.first_arrival for account in waited)

    def missing() -> str:
        return f"{sum(account not in stack.slack.first_arrival for account in waited)} alerts that waited out the outage to reach Slack"

    await wait_until(all_waiting_delivered, SLACK_DRAINED_BOUND_S, missing)
    drained = max(stack.slack.first_arrival[account] for account in waited) - failures_ended
    await asyncio.sleep(max(0.0, SLACK_AFTER_S - (time.monotonic() - failures_ended)))
    await load.stop()

    await nothing_lost_or_repeated(stack.url("signals"), stack.slack, load, BEFORE_S + outage_s + SLACK_AFTER_S)
    assert stack.slack.refused[500] > 0 and stack.slack.refused[429] > 0, f"the outage was never met: {stack.slack.refused}"
    dead = notifier_metric(stack, "radar_notifier_dead_letters_total")
    assert dead == 0, f"{dead:.0f} deliveries went to the DLQ during a {outage_s} s outage"
    print(
        f"Slack 500 for {ERRORS_S} s then 429 (Retry-After {RETRY_AFTER_S}) for {RATE_LIMITED_S} s: {load.acknowledged_events} "
        f"events acknowledged and counted, {len(load.planted_at)} crossings delivered once ({len(waited)} waited), "
        f"{load.retries} ingest retries, Slack refused {dict(stack.slack.refused)} of {stack.slack.attempts} requests, "
        f"0 dead letters; a fresh crossing back {recovered:.1f} s and the backlog drained {drained:.1f} s after the failures ended"
    )


# ----------------------------------------------------------------------------- the alert log's disk full


@contextlib.contextmanager
def small_tmpfs(directory: Path, size: str) -> Iterator[Path]:
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True, capture_output=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True, capture_output=True)


def fill(path: Path) -> int:
    """Writes `path` until its disk is full (down to single bytes, so not even a page is left); returns its size."""
    size = 0
    with path.open("wb", buffering=0) as filler:
        for chunk in (65_536, 4_096, 1):
            while True:
                try:
                    size += filler.write(b"\0" * chunk) or 0
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return size


class AlertLog:
    """The alert log read as the console channel's reader would: whole JSON lines, each an alert; notes when each
    planted account first appeared, and fails on any line that is not a whole JSON object."""

    def __init__(self, path: Path, planted_pattern: re.Pattern[str]) -> None:
        self.path = path
        self.planted_pattern = planted_pattern
        self.first_seen: dict[str, float] = {}
        self.by_alert: Counter[str] = Counter()
        self.by_account: Counter[str] = Counter()

    def read(self) -> int:
        """Counts the log afresh; returns its lines. A last line without its newline is a write in progress or torn."""
        data = self.path.read_bytes() if self.path.exists() else b""
        lines = data.split(b"\n")
        if lines[-1]:
            raise AssertionError(f"the alert log ends in a partial line: {lines[-1][-200:]!r}")
        self.by_alert.clear()
        self.by_account.clear()
        now = time.monotonic()
        for number, line in enumerate(lines[:-1], 1):
            try:
                alert = orjson.loads(line)["alert"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise AssertionError(f"line {number} of the alert log is not a whole alert ({exc}): {line[:200]!r}") from None
            self.by_alert[alert["alert_id"]] += 1
            if self.planted_pattern.fullmatch(alert["account_id"]):
                self.by_account[alert["account_id"]] += 1
                self.first_seen.setdefault(alert["account_id"], now)
        return len(lines) - 1


async def watch(log: AlertLog, stopping: asyncio.Event) -> None:
    """Reads the log every 0.2 s so `first_seen` is within 0.2 s of the write; a partial last line is only a
    write in progress here (the final read, after the load, is the one that must find none)."""
    while not stopping.is_set():
        with contextlib.suppress(AssertionError):
            log.read()
        await asyncio.sleep(0.2)


@pytest.mark.timeout(600)
async def test_alert_log_disk_full_for_30_s_loses_and_tears_nothing(
    fault_stack_factory: Callable[..., FaultStack], database_url: str, running_loads: list[Load], tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "alertfs", TMPFS_SIZE) as disk:
        alert_log = disk / "alerts.ndjson"
        stack = fault_stack_factory(database_url, start=())
        for name in SERVICES:  # the notifier without Slack: alerts go to the console channel and its log
            stack.start(name, **({"RADAR_SLACK_WEBHOOKS": "{}", "RADAR_ALERT_LOG": str(alert_log)} if name == "notifier" else {}))
        log = AlertLog(alert_log, re.compile(rf"p{stack.tag}-\d+"))
        stopping = asyncio.Event()
        watcher = asyncio.create_task(watch(log, stopping))
        try:
            load = stack.load(RATE, quiet_accounts=40, planted=DISK_BEFORE_S + DISK_FULL_S + DISK_AFTER_S + 5)
            await stack.declare(load)
            load.start()
            running_loads.append(load)
            await asyncio.sleep(DISK_BEFORE_S)  # the load runs meanwhile: these waits set its length, not an order

            assert log.first_seen, f"no alert reached the log before the disk filled\n{stack.logs()}"
            filler = disk / "filler"
            filled = fill(filler)
            await asyncio.sleep(DISK_FULL_S)
            filler.unlink()
            freed_at = time.monotonic()
            refused = notifier_metric(stack, "radar_notifier_deliveries_total", channel="console", outcome="rate_limited")
            assert refused > 0, f"no write met the full disk ({filled} bytes of filler)\n{stack.logs()}"

            async def fresh_logged() -> bool:
                return any(at >= freed_at and account in log.first_seen for account, at in list(load.planted_at.items()))

            await wait_until(fresh_logged, DISK_RECOVERY_BOUND_S, lambda: f"a fresh crossing in the log within {DISK_RECOVERY_BOUND_S} s")
            recovered = min(log.first_seen[a] for a, at in load.planted_at.items() if at >= freed_at and a in log.first_seen) - freed_at
            await asyncio.sleep(max(0.0, DISK_AFTER_S - (time.monotonic() - freed_at)))
            await load.stop()

            async with httpx.AsyncClient() as client:
                await counted_by_signals(client, stack.url("signals"), load)

            async def all_logged() -> bool:
                return all(account in log.first_seen for account in load.planted_at)

            def missing() -> str:
                absent = sorted(set(load.planted_at) - set(log.first_seen))
                return f"every crossing in the alert log: {len(absent)} of {len(load.planted_at)} missing, e.g. {absent[:5]}"

            await wait_until(all_logged, 120, missing)
        finally:
            stopping.set()
            await watcher
            for service in stack.services.values():  # nothing may hold the tmpfs open when it is unmounted
                service.stop()
        lines = log.read()  # the notifier stopped: every write is finished, so a partial last line is a torn one
        assert {alert: n for alert, n in log.by_alert.items() if n > 1} == {}, "an alert was logged more than once"
        assert {account: n for account, n in log.by_account.items() if n > 1} == {}, "a crossing was logged more than once"
        assert set(log.by_account) == set(load.planted_at)
        load.assert_held(DISK_BEFORE_S + DISK_FULL_S + DISK_AFTER_S)
        print(
            f"alert log disk full for {DISK_FULL_S} s: {load.acknowledged_events} events acknowledged and counted, "
            f"{len(load.planted_at)} crossings logged once as whole lines ({lines} lines, {os.path.getsize(alert_log)} bytes), "
            f"{refused:.0f} writes refused, a fresh crossing back {recovered:.1f} s after the filler was deleted"
        )
