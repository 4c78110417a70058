"""Soak: the whole pipeline for `--minutes` under steady load, one service killed with -9 every `--kill-every` minutes.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 DATABASE_URL=postgresql+asyncpg://... \\
        .venv/bin/python bench/soak.py [--minutes 20] [--rate 2000] [--kill-every 2] [--warmup 2]

ingest, signals, scoring and notifier run as `radar serve NAME` processes (each in its own process group) on one
broker and one database, with Slack played by the fault suite's stand-in in this process. The load is the fault
suite's (tests/faults/harness.py): `--rate` events/s of quiet usage through ingest, every unacknowledged batch retried
with the same ids (at most IN_FLIGHT batches at ingest at a time), and a planted crossing every `--plant-every` seconds
(one alert, one Slack message each). Every
`--kill-every` minutes the next service in the round ingest, signals, scoring, notifier gets kill -9 of its whole
process group and is started again at once on the same port, while the load goes on.

At the end, once the load has drained, the suite's checks: every acknowledged event counted once by the signals
worker, every acknowledged crossing delivered to Slack exactly once. Beside them:
  consumer lag  every LAG_SECONDS, each consumer group's high-water marks minus its committed offsets, asked of the
                broker with an admin client (the signals worker, a Faust app, does not export `radar_consumer_lag`;
                scoring and notifier do, but only for the partitions a live process owns, so a dead one shows none).
                Usage records are one per partition per ingest request, so the signals figure counts records, not events.
  memory        every RSS_SECONDS, VmRSS summed over each service's process group (/proc). Each life of a process
                (launch to kill, or to the end) is a series of its own. A life is judged when it lasted at least
                twice `--warmup`: its growth is its last sample against its first one after the warm-up, and it is
                flat below 10 %. Shorter lives are shown but not judged.
Exits 1 when a count is off (an acknowledged event lost or counted twice, an alert lost or sent twice, a batch given
up on) or a service did not come back; memory growth is reported, not failed on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest_throughput import kafka_and_postgres, prepare  # noqa: E402 (this directory)

from shared.db import upgrade_database  # noqa: E402
from shared.embedded_broker import free_port  # noqa: E402
from tests.conftest import Stack  # noqa: E402
from tests.faults.conftest import SERVICES, FaultStack  # noqa: E402
from tests.faults.harness import (  # noqa: E402
    CHANNELS,
    PLANTED_LIMIT,
    PLANTED_QUANTITY,
    QUIET_LIMIT,
    Load,
    SlackStandIn,
    account_body,
    counted_by_signals,
    declare,
    delivered_once,
)

VICTIMS = ("ingest", "signals", "scoring", "notifier")  # the kill round's order
RSS_SECONDS = 5.0
LAG_SECONDS = 5.0
FLAT_GROWTH = 0.10
DECLARE_SLICE = 100
IN_FLIGHT = 32  # batches at ingest at once; half the load's 64 connections
COUNT_TIMEOUT_S, DELIVERY_TIMEOUT_S = 180, 240
COLUMNS = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"), TimeElapsedColumn())


# ----------------------------------------------------------------------------- the load


# ----------------------------------------------------------------------------- memory


def rss_by_process_group() -> dict[int, int]:
    """VmRSS in bytes summed per process group, over every process /proc shows."""
    totals: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            group = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
            status = (proc / "status").read_text()
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found is not None:  # kernel threads and zombies have none
            totals[group] = totals.get(group, 0) + int(found.group(1)) * 1024
    return totals


@dataclass
class Life:
    """One process of a service, from its launch to its kill (or the end of the run), and its RSS samples."""

    pid: int
    launched: float  # seconds into the run
    ended: float | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds into the run, bytes)

    def length(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.launched

    def growth(self, warmup: float, now: float) -> float | None:
        """Last sample against the first one after the warm-up; None when the life was too short to judge."""
        if self.length(now) < 2 * warmup:
            return None
        settled = [rss for at, rss in self.samples if at >= self.launched + warmup]
        if len(settled) < 2:
            return None
        return (settled[-1] - settled[0]) / settled[0]


# ----------------------------------------------------------------------------- consumer lag


class LagWatch:
    """Each group's lag (sum over its partitions of high-water mark - committed offset), asked of the broker."""

    def __init__(self, bootstrap: str, groups: dict[str, str]) -> None:
        self.groups = groups  # service -> consumer group
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self.max_lag: dict[str, tuple[int, float]] = {}  # service -> (records, seconds into the run)
        self.failed_samples = 0

    async def start(self) -> None:
        await self.admin.start()
        await self.offsets.start()

    async def sample(self, at: float) -> None:
        for service, group in self.groups.items():
            try:
                committed = await self.admin.list_consumer_group_offsets(group)
                partitions = [partition for partition, offset in committed.items() if offset is not None]
                if not partitions:
                    continue
                highwaters = await self.offsets.end_offsets(partitions)
            except Exception:  # noqa: BLE001 (a coordinator moving mid-kill: the next sample will do)
                self.failed_samples += 1
                continue
            lag = sum(max(0, highwaters[partition] - max(0, committed[partition].offset)) for partition in partitions)
            if lag >= self.max_lag.get(service, (-1, 0.0))[0]:
                self.max_lag[service] = (lag, at)

    async def stop(self) -> None:
        await self.offsets.stop()
        await self.admin.close()


# ----------------------------------------------------------------------------- the run


@dataclass
class Kill:
    victim: str
    at: float  # seconds into the run
    ready_after: float | None = None  # seconds from the kill until the new process answered /readyz
    error: str = ""


def kill_schedule(minutes: float, kill_every: float) -> list[tuple[float, str]]:
    """(seconds into the run, victim): round robin, none at or after the end."""
    if kill_every <= 0:
        return []
    count = math.ceil(minutes / kill_every) - 1
    return [(n * kill_every * 60, VICTIMS[(n - 1) % len(VICTIMS)]) for n in range(1, count + 1)]


def stack_env(bootstrap: str, database_url: str, tag: str, slack: SlackStandIn, partitions: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "RADAR_TOPIC_PREFIX": f"soak{tag}-",
        "RADAR_CONSUMER_GROUP_PREFIX": f"soak{tag}",
        "RADAR_SIGNALS_APP_ID": f"soak{tag}-signals",
        "RADAR_PARTITIONS": str(partitions),
        "RADAR_SLACK_WEBHOOKS": json.dumps(slack.webhooks()),
        "RADAR_LOG_FORMAT": "json",
        "RADAR_LOG_LEVEL": "WARNING",
        **{f"RADAR_{name.upper()}_PORT": str(free_port()) for name in VICTIMS},
    }


@dataclass
class Soak:
    options: argparse.Namespace
    fault: FaultStack
    load: Load
    lives: dict[str, list[Life]] = field(default_factory=lambda: {name: [] for name in VICTIMS})
    kills: list[Kill] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    events_out: int = 0
    planted_counted: int = 0
    elapsed: float = 0.0
    started: float = 0.0

    def now(self) -> float:
        return time.monotonic() - self.started

    def sample_rss(self) -> None:
        totals = rss_by_process_group()
        at = self.now()
        for name, lives in self.lives.items():
            pid = self.fault.services[name].process.pid
            if lives and lives[-1].ended is None and lives[-1].pid == pid and pid in totals:
                lives[-1].samples.append((at, totals[pid]))  # a killed one's successor counts once `restart` noted it

    async def restart(self, kill: Kill) -> None:
        """kill -9, then start again at once; the load and the sampling go on meanwhile (both calls block)."""
        self.lives[kill.victim][-1].ended = kill.at
        try:
            await asyncio.to_thread(self.fault.kill, kill.victim)
            relaunched = self.now()
            await asyncio.to_thread(self.fault.start, kill.victim, 180)
        except AssertionError as failure:
            kill.error = str(failure).splitlines()[0][:200]
            self.failures.append(f"{kill.victim} did not come back after the kill at {kill.at / 60:.1f} min: {kill.error}")
            return
        kill.ready_after = self.now() - kill.at
        self.lives[kill.victim].append(Life(self.fault.services[kill.victim].process.pid, relaunched))

    async def run(self, progress: Progress, lag: LagWatch) -> None:
        duration = self.options.minutes * 60
        schedule = kill_schedule(self.options.minutes, self.options.kill_every)
        bar = progress.add_task("soak", total=duration)
        self.started = time.monotonic()
        for name in VICTIMS:
            self.lives[name].append(Life(self.fault.services[name].process.pid, 0.0))
        self.load.start()
        restarts: list[asyncio.Task[None]] = []
        next_rss = next_lag = 0.0
        sampling: asyncio.Task[None] | None = None
        while (now := self.now()) < duration:
            if schedule and now >= schedule[0][0]:
                at, victim = schedule.pop(0)
                kill = Kill(victim, at)
                self.kills.append(kill)
                progress.console.print(f"{at / 60:5.1f} min  kill -9 {victim} (pid {self.fault.services[victim].process.pid})")
                restarts.append(asyncio.create_task(self.restart(kill)))
            if now >= next_rss:
                self.sample_rss()
                next_rss = now + RSS_SECONDS
            if now >= next_lag and (sampling is None or sampling.done()):
                sampling = asyncio.create_task(lag.sample(now))  # a slow broker answer delays no kill and no RSS sample
                next_lag = now + LAG_SECONDS
            worst = max((records for records, _at in lag.max_lag.values()), default=0)
            progress.update(
                bar,
                completed=now,
                description=f"soak: {self.load.acknowledged_events:,} events acked, {len(self.load.planted_at)} crossings, "
                f"{self.load.retries} retries, max lag {worst:,}",
            )
            await asyncio.sleep(0.5)
        self.elapsed = self.now()
        for name in VICTIMS:
            if self.lives[name]:
                self.lives[name][-1].ended = self.elapsed
        progress.remove_task(bar)
        await asyncio.gather(*restarts, *([sampling] if sampling else []))
        in_flight = self.load.pending
        await self.checked(
            self.load.stop(),
            progress,
            f"draining the load: {in_flight} batches in flight",
            in_flight,
            lambda: in_flight - self.load.pending,
        )

    async def checked(self, step: Awaitable[object], progress: Progress, what: str, total: int, done: Callable[[], int]) -> None:
        """Awaits a step of the suite's that asserts, with a bar; its failure is noted and the run goes on to the report."""
        task = progress.add_task(what, total=total)
        running = asyncio.ensure_future(step)
        while not running.done():
            progress.update(task, completed=done())
            await asyncio.wait({running}, timeout=0.5)
        progress.remove_task(task)
        if isinstance(running.exception(), AssertionError):
            self.failures.append(str(running.exception()))
        else:
            running.result()

    async def check(self, progress: Progress) -> None:
        """The fault suite's checks, then the totals they compared (the harness does not return them)."""
        load, signals = self.load, self.fault.url("signals")
        quiet = [load.quiet_account(n) for n in range(load.quiet_accounts)]
        async with httpx.AsyncClient() as client:
            counting = counted_by_signals(client, signals, load, COUNT_TIMEOUT_S)
            await self.checked(counting, progress, f"signals counting every acknowledged event (<= {COUNT_TIMEOUT_S} s)", 1, lambda: 0)
            crossings = len(load.planted_at)
            delivering = delivered_once(self.fault.slack, load, DELIVERY_TIMEOUT_S)
            await self.checked(
                delivering,
                progress,
                "alerts delivered",
                crossings,
                lambda: len(load.planted_at.keys() & self.fault.slack.first_arrival.keys()),
            )
            self.events_out = int(sum(await asyncio.gather(*(usage(client, signals, account) for account in quiet))))
            planted = await asyncio.gather(*(usage(client, signals, account) for account in load.planted_at))
            self.planted_counted = round(sum(planted) / PLANTED_QUANTITY)
        off = sum(1 for used in planted if used != PLANTED_QUANTITY)
        if off:
            self.failures.append(f"{off} of the {len(planted)} acknowledged crossings were not counted exactly once by signals")
        if load.unacknowledged:
            self.failures.append(f"{load.unacknowledged} events were never acknowledged by ingest (given up on)")


async def usage(client: httpx.AsyncClient, signals: str, account: str) -> float:
    """The signals worker's api_calls used by the account this period (0 when it holds none)."""
    response = await client.get(f"{signals}/v1/state/{account}", timeout=10)
    metric = response.json().get("usage", {}).get("api_calls") if response.status_code == 200 else None
    return float(metric["used"]) if metric else 0.0


async def declare_accounts(fault: FaultStack, load: Load, progress: Progress) -> None:
    """The suite's declare (PUT through ingest, then wait until signals knows each limit), in slices for the bar;
    the bodies are FaultStack.declare's (a planted account's channel by its index)."""
    quiet = {load.quiet_account(n): account_body(load.quiet_account(n), QUIET_LIMIT) for n in range(load.quiet_accounts)}
    planted = {account: account_body(account, PLANTED_LIMIT, f"ch{n % CHANNELS}") for n, account in enumerate(load.planted_accounts)}
    accounts = list((quiet | planted).items())
    task = progress.add_task(f"declaring {len(quiet)} quiet and {len(planted)} planted accounts", total=len(accounts))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {fault.key}"}, timeout=30) as client:
        for start in range(0, len(accounts), DECLARE_SLICE):
            part = dict(accounts[start : start + DECLARE_SLICE])
            await declare(client, fault.url("ingest"), fault.url("signals"), part)
            progress.advance(task, len(part))
    progress.remove_task(task)


# ----------------------------------------------------------------------------- figures


def mb(size: int) -> str:
    return f"{size / 2**20:,.0f}"


def report(soak: Soak, lag: LagWatch, console: Console) -> None:
    load, slack, options = soak.load, soak.fault.slack, soak.options
    planted = len(load.planted_at)
    delivered = sum(1 for account in load.planted_at if account in slack.first_arrival)
    duplicates = slack.duplicates()
    repeated = {account: count for account, count in slack.by_account.items() if count > 1}
    quiet_in = sum(load.acknowledged.values())
    counts = Table(title=f"soak: {soak.elapsed / 60:.1f} min at {options.rate:,.0f} events/s, {len(soak.kills)} kills -9")
    counts.add_column("count")
    counts.add_column("in", justify="right")
    counts.add_column("out", justify="right")
    counts.add_column("", justify="left")
    counts.add_row("usage events (quiet)", f"{quiet_in:,}", f"{soak.events_out:,}", "acknowledged by ingest / counted by signals")
    counts.add_row("crossings (planted)", f"{planted:,}", f"{soak.planted_counted:,}", "acknowledged / counted by signals")
    counts.add_row("alerts", f"{planted:,}", f"{delivered:,}", "planted / delivered to Slack")
    counts.add_row(
        "duplicates per alert id",
        "0",
        f"{len(duplicates)}",
        f"alert ids sent more than once (most: {max(duplicates.values(), default=1)}); crossings sent twice: {len(repeated)}",
    )
    counts.add_row("events given up on", "0", f"{load.unacknowledged:,}", f"{load.retries:,} retries, answers {dict(load.statuses)}")
    console.print(counts)

    services = Table(
        title=f"services (RSS of the process group; growth after a {options.warmup:g} min warm-up, lives >= {2 * options.warmup:g} min)"
    )
    for column in (
        "service",
        "lives",
        "kills: ready again after",
        "max consumer lag",
        "RSS MB first / peak / last",
        "growth per judged life",
        "flat",
    ):
        services.add_column(column)
    warmup = options.warmup * 60
    for name in VICTIMS:
        lives = soak.lives[name]
        samples = [rss for life in lives for _at, rss in life.samples]
        growths = [(n, life, life.growth(warmup, soak.elapsed)) for n, life in enumerate(lives, 1)]
        judged = [(n, life, growth) for n, life, growth in growths if growth is not None]
        shown = (
            ", ".join(f"#{n} {growth:+.1%} ({life.length(soak.elapsed) / 60:.1f} min)" for n, life, growth in judged)
            or "no life long enough"
        )
        flat = "n/a" if not judged else ("yes" if all(growth < FLAT_GROWTH for _n, _life, growth in judged) else "NO")
        ready = ", ".join(
            f"{kill.ready_after:.0f} s" if kill.ready_after is not None else "never" for kill in soak.kills if kill.victim == name
        )
        records, at = lag.max_lag.get(name, (None, 0.0))
        lag_text = (
            "no consumer"
            if name not in lag.groups
            else (f"{records:,} records at {at / 60:.1f} min" if records is not None else "none seen")
        )
        rss = f"{mb(samples[0])} / {mb(max(samples))} / {mb(samples[-1])}" if samples else "no samples"
        services.add_row(name, str(len(lives)), ready or "-", lag_text, rss, shown, flat)
    console.print(services)
    if lag.failed_samples:
        console.print(f"lag samples that failed (a coordinator moving mid-kill): {lag.failed_samples}")
    console.print(
        f"achieved {load.acknowledged_events / soak.elapsed:,.0f} events/s acknowledged over the run (target {options.rate:,.0f})"
    )


# ----------------------------------------------------------------------------- main


async def soak_run(options: argparse.Namespace, fault: FaultStack, console: Console) -> int:
    duration = options.minutes * 60
    crossings = math.ceil(duration / options.plant_every) + 1
    load = Load(
        fault.url("ingest"),
        fault.key,
        fault.tag,
        options.quiet_accounts,
        fault.planted(crossings),
        options.rate,
        options.plant_every,
        max_in_flight=IN_FLIGHT,
    )
    soak = Soak(options, fault, load)
    settings = fault.stack.settings
    groups = {"signals": settings.radar_signals_app_id, "scoring": settings.scoring_group, "notifier": settings.notifier_group}
    lag = LagWatch(settings.kafka_bootstrap_servers, groups)
    with Progress(*COLUMNS, console=console) as progress:
        task = progress.add_task("starting services", total=len(SERVICES))
        for name in SERVICES:
            await asyncio.to_thread(fault.start, name, 180)
            progress.advance(task)
        progress.remove_task(task)
        await declare_accounts(fault, load, progress)
        await lag.start()
        try:
            await soak.run(progress, lag)
        except BaseException:
            await load.abandon()
            raise
        finally:
            await lag.stop()
        await soak.check(progress)
    report(soak, lag, console)
    for failure in soak.failures:
        console.print(f"[bold red]FAILED[/]: {failure}")
    if soak.failures:
        return 1
    console.print("[bold green]OK[/]: every acknowledged event counted once, every alert delivered once, every service back")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=2_000, help="events/s through ingest")
    parser.add_argument("--kill-every", type=float, default=2, help="minutes between kills -9 (0: none)")
    parser.add_argument("--warmup", type=float, default=2, help="minutes of a process's life before its RSS is the baseline")
    parser.add_argument("--plant-every", type=float, default=2, help="seconds between planted crossings")
    parser.add_argument("--quiet-accounts", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=4)
    options = parser.parse_args()

    bootstrap, database_url = kafka_and_postgres()
    tag = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="radar-bench-soak-"))
    slack = SlackStandIn(re.compile(rf"p{tag}-\d+".encode()))
    stack = Stack(stack_env(bootstrap, database_url, tag, slack, options.partitions))
    upgrade_database(database_url)
    key = asyncio.run(prepare(stack.settings))
    fault = FaultStack(stack, slack, key, workdir, tag)
    console = Console(width=None if sys.stdout.isatty() else 150)  # the tables stay one line a row in a log
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` and the like: stop the services on the way out
    console.print(f"broker {bootstrap}, {options.partitions} partitions; services' logs in {workdir}")
    try:
        code = asyncio.run(soak_run(options, fault, console))
    finally:
        for service in reversed(fault.services.values()):
            service.stop()
        slack.close()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
