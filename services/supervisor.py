"""`radar up`: the whole stack as supervised processes, logs prefixed by service, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field

import httpx
from rich.console import Console

from shared.settings import RADAR_HOME, Settings

SERVICES = ("ingest", "signals", "scoring", "notifier")
COLORS = {"ingest": "cyan", "signals": "magenta", "scoring": "yellow", "notifier": "green", "demo": "blue", "broker": "white"}
STOP_TIMEOUT_S = 20
READY_TIMEOUT_S = 120


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    console: Console
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    pump: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        # own session: Ctrl-C reaches only the supervisor, which then stops children in order
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        color = COLORS.get(self.name, "white")
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.console.print(f"[{color}]{self.name:>8} |[/{color}] {line}", markup=True, highlight=False, soft_wrap=True)

    async def stop(self) -> None:
        """SIGTERM the child's whole process group, then SIGKILL whatever outlives the timeout."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.console.print(f"[red]{self.name} did not stop in {STOP_TIMEOUT_S}s; killing it[/red]")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        if self.pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pump, 2)


def ready_url(settings: Settings, service: str) -> str:
    port = {
        "ingest": settings.radar_ingest_port,
        "scoring": settings.radar_scoring_port,
        "notifier": settings.radar_notifier_port,
        "signals": settings.radar_signals_port,
    }[service]
    return f"http://{settings.radar_host}:{port}/readyz"


def console_url(settings: Settings) -> str:
    """The web console, served by scoring (services/scoring/entrypoints/console)."""
    return f"http://{settings.radar_host}:{settings.radar_scoring_port}/ui"


async def wait_ready(settings: Settings, children: list[Child], stopping: asyncio.Event, timeout_s: float = READY_TIMEOUT_S) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    pending = {child.name for child in children}
    async with httpx.AsyncClient(timeout=2) as client:
        while pending and not stopping.is_set():
            for name in list(pending):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(ready_url(settings, name))).status_code == 200:
                        pending.discard(name)
            if asyncio.get_running_loop().time() > deadline:
                return False
            if pending:
                await asyncio.sleep(0.5)
    return not pending


async def _watch(children: list[Child], stopping: asyncio.Event, console: Console) -> None:
    """Restart a service that died on its own (a few times), like any process supervisor would."""
    while not stopping.is_set():
        for child in children:
            if child.process is not None and child.process.returncode is not None and not stopping.is_set():
                if child.restarts >= 5:
                    console.print(f"[red]{child.name} keeps exiting (code {child.process.returncode}); stopping everything[/red]")
                    stopping.set()
                    return
                child.restarts += 1
                console.print(f"[red]{child.name} exited with code {child.process.returncode}; restart {child.restarts}/5[/red]")
                await asyncio.sleep(2)
                await child.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1)


async def run_stack(settings: Settings, demo: bool, console: Console) -> int:
    from shared.auth import KeyStore
    from shared.db import create_engine, sessionmaker, upgrade_database
    from shared.embedded_broker import EmbeddedBroker
    from shared.kafka import ensure_topics

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    RADAR_HOME.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("RADAR_LOG_FORMAT", "console")
    broker: EmbeddedBroker | None = None
    children: list[Child] = []
    try:
        if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
            broker = EmbeddedBroker(log_path=RADAR_HOME / "broker.log")
            await asyncio.to_thread(broker.start)
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
            console.print(f"embedded broker (Tansu) on [bold]{broker.bootstrap}[/bold]; log in {RADAR_HOME / 'broker.log'}")
        else:
            console.print(f"using Kafka at [bold]{env['KAFKA_BOOTSTRAP_SERVERS']}[/bold]")
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = env["KAFKA_BOOTSTRAP_SERVERS"]
        stack_settings = Settings()
        console.print(f"database: [bold]{stack_settings.database_url.split('@')[-1]}[/bold]")
        await asyncio.to_thread(upgrade_database, stack_settings.database_url)
        await ensure_topics(stack_settings)
        if broker is not None:
            # the embedded broker forgets everything when it stops; SQLite does not: hand signals its limits again
            from services.ingest.entrypoints.republish import republish_declarations

            again = await republish_declarations(stack_settings)
            if again.accounts or again.plans:
                console.print(
                    f"re-published {again.accounts} account(s) and {again.plans} plan(s) from the database to the embedded broker"
                )

        for name in SERVICES:
            child = Child(name, [sys.executable, "-m", "services.cli", "serve", name], env, console)
            await child.start()
            children.append(child)
        watcher = asyncio.create_task(_watch(children, stopping, console))
        if not await wait_ready(stack_settings, children, stopping):
            if not stopping.is_set():
                console.print("[red]services did not become ready in time; stopping[/red]")
                stopping.set()
        else:
            host = stack_settings.radar_host
            destination = "Slack" if stack_settings.slack_webhook_url else str(stack_settings.radar_alert_log)
            console.print(
                f"[bold green]all services ready[/bold green] — ingest http://{host}:{stack_settings.radar_ingest_port}, "
                f"scores http://{host}:{stack_settings.radar_scoring_port}/v1/accounts; alerts → {destination}; Ctrl-C stops everything"
            )
            if not demo:
                how = "log in with a key that has the read scope (radar keys create NAME --scope read)"
                console.print(f"[bold]web console[/bold] {console_url(stack_settings)} — {how}", soft_wrap=True, highlight=False)
        demo_task: asyncio.Task[None] | None = None
        if demo and not stopping.is_set():
            from services.demo import stream_demo

            engine = create_engine(stack_settings.database_url)
            key = await KeyStore(sessionmaker(engine)).create("demo")
            # a read-only key of its own for the console: the one printed can read and act on alerts, not write events
            console_key = await KeyStore(sessionmaker(engine)).create("demo-console", ["read"])
            await engine.dispose()
            console.print(
                f"[bold]web console[/bold] {console_url(stack_settings)} — log in with the demo's read key {console_key.plaintext}",
                soft_wrap=True,
                highlight=False,
            )
            demo_task = asyncio.create_task(
                stream_demo(f"http://{stack_settings.radar_host}:{stack_settings.radar_ingest_port}", key.plaintext, None, console)
            )
        await stopping.wait()
        console.print("stopping…")
        if demo_task is not None:
            demo_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await demo_task
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        return 0
    finally:
        # ingest first so no new events arrive, then the pipeline in flow order
        for child in children:
            await child.stop()
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        console.print("stopped; no process left behind")
