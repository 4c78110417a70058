"""Fault-suite fixtures: the whole pipeline as processes under load, services that can be killed and started again,
and a Kafka broker and a PostgreSQL cluster of a test's own, to stop and start without touching the shared ones."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServiceProcess, Stack, launch_service
from tests.faults.harness import CHANNELS, PLANTED_LIMIT, QUIET_LIMIT, Load, SlackStandIn, account_body, declare

SERVICES = ("notifier", "scoring", "signals", "ingest")  # started in this order: each one's consumers are up first


class LocalServer:
    """A server that `deploy/kafka.sh` or `deploy/postgres.sh` runs in `directory`: stopped and started again on the
    same address with its data kept."""

    def __init__(self, script: str, directory: Path) -> None:
        self.script = str(ROOT / "deploy" / script)
        self.directory = directory
        self.address = self.start()

    def start(self) -> str:
        result = subprocess.run(["bash", self.script, "start", str(self.directory)], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{self.script} start failed:\n{result.stderr[-3000:]}"
        return result.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        result = subprocess.run(["bash", self.script, "stop", str(self.directory)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{self.script} stop failed:\n{result.stderr[-3000:]}"


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[LocalServer]:
    """An Apache Kafka broker of this test's own (the session's broker stays up for the other tests)."""
    broker = LocalServer("kafka.sh", tmp_path / "kafka")
    yield broker
    broker.stop()


@pytest.fixture
def own_postgres() -> Iterator[LocalServer]:
    """A PostgreSQL cluster of this test's own; `address` is its admin URL. Not under pytest's tmp_path: as root the
    cluster runs as the 'postgres' user, who cannot enter /tmp/pytest-of-root (0700)."""
    directory = Path(tempfile.mkdtemp(prefix="radar-pg-"))
    directory.chmod(0o755)
    cluster = LocalServer("postgres.sh", directory / "pg")
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


@dataclass
class FaultStack:
    """Four services as processes on one stack, a Slack stand-in, a key, and the accounts the load uses."""

    stack: Stack
    slack: SlackStandIn
    key: str
    workdir: Path
    tag: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    _launched: int = 0

    def url(self, service: str, path: str = "") -> str:
        return self.stack.url(service, path)

    def start(self, name: str, ready_timeout: float = 120, **extra_env: str) -> ServiceProcess:
        self._launched += 1
        env = self.extra_env.get(name, {}) | extra_env
        log = self.workdir / f"{name}-{self._launched}.log"
        service = launch_service(name, self.stack, self.workdir, log, ready_timeout, **env)
        self.services[name] = service
        return service

    def kill(self, name: str) -> None:
        """kill -9 of the service's whole process group: no shutdown hook runs."""
        service = self.services[name]
        service.stop(signal.SIGKILL)
        assert service.process.returncode == -signal.SIGKILL

    def ready(self, name: str) -> bool:
        try:
            return httpx.get(self.url(name, "/readyz"), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def planted(self, count: int) -> list[str]:
        return [f"p{self.tag}-{n}" for n in range(count)]

    def load(self, rate: float, quiet_accounts: int, planted: int, plant_every: float = 1.0) -> Load:
        return Load(self.url("ingest"), self.key, self.tag, quiet_accounts, self.planted(planted), rate=rate, plant_every=plant_every)

    async def declare(self, load: Load) -> None:
        """Declares the load's accounts and waits until signals knows all their limits."""
        quiet = {load.quiet_account(n): account_body(load.quiet_account(n), QUIET_LIMIT) for n in range(load.quiet_accounts)}
        planted = {account: account_body(account, PLANTED_LIMIT, f"ch{n % CHANNELS}") for n, account in enumerate(load.planted_accounts)}
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {self.key}"}, timeout=30) as client:
            await declare(client, self.url("ingest"), self.url("signals"), quiet | planted)

    def logs(self) -> str:
        return "\n".join(
            f"----- {path.name} -----\n{path.read_text(errors='replace')[-3000:]}" for path in sorted(self.workdir.glob("*.log"))
        )


@pytest.fixture
def fault_stack_factory(
    tmp_path: Path, stack_factory: Callable[..., Stack], api_key_factory: Callable[..., str]
) -> Iterator[Callable[..., FaultStack]]:
    """`make(database_url, kafka_bootstrap=None, start=SERVICES, **env)`: a stack on the session's broker (or the
    one given), every service started and ready."""
    made: list[FaultStack] = []

    def make(database_url: str, kafka_bootstrap: str | None = None, start: tuple[str, ...] = SERVICES, **env: str) -> FaultStack:
        tag = uuid.uuid4().hex[:8]
        slack = SlackStandIn(re.compile(rf"p{tag}-\d+".encode()))
        if kafka_bootstrap is not None:
            env["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
        stack = stack_factory(database_url, RADAR_SLACK_WEBHOOKS=json.dumps(slack.webhooks()), **env)
        fault_stack = FaultStack(stack, slack, api_key_factory(database_url), tmp_path, tag)
        made.append(fault_stack)
        for name in start:
            fault_stack.start(name)
        return fault_stack

    yield make
    for fault_stack in made:
        for service in reversed(fault_stack.services.values()):
            service.stop()
        fault_stack.slack.close()


@pytest.fixture
async def running_loads() -> AsyncIterator[list[Load]]:
    """Loads a test started are stopped even when it fails half-way, so no request outlives the test."""
    loads: list[Load] = []
    yield loads
    for load in loads:
        await load.abandon()
