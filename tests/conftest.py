"""Factory fixtures for the real components: Kafka topics, PostgreSQL databases, service processes,
and HTTP receivers standing in for Slack. A test that needs a component that is not running fails."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.db import upgrade_database
from shared.kafka import ensure_topics
from shared.settings import Settings
from shared.topics import Topics
from tests.helpers import ScriptedFailures, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = [
    "tests.fixtures.scoring",
    "tests.fixtures.signals",
    "tests.fixtures.ops",
    "tests.fixtures.notifier",
    "tests.fixtures.console",
]


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The Apache Kafka broker deploy/test.sh started; no broker is a failure, not a skip."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the tests through deploy/test.sh, which starts Kafka")
    if not _reachable(bootstrap.split(",")[0]):
        pytest.fail(f"Kafka at {bootstrap} is not reachable")
    return bootstrap


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = os.environ.get("RADAR_TEST_DATABASE_URL")
    if not url:
        pytest.fail("RADAR_TEST_DATABASE_URL is not set: run the tests through deploy/test.sh, which starts PostgreSQL")
    return url


async def _admin_execute(admin_url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _run(coro) -> object:
    """Fixtures are sync; run their async set-up on a private loop in a thread, out of the test's loop."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture
def database_factory(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """A fresh, migrated PostgreSQL database per call; dropped after the test."""
    created: list[str] = []

    def make() -> str:
        url = create_database(pg_admin_url)
        created.append(url.rsplit("/", 1)[1])
        return url

    yield make
    for name in created:
        _run(_admin_execute(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def create_database(admin_url: str) -> str:
    """A new database on the cluster `admin_url` reaches, migrated to the newest revision; its URL."""
    name = f"radar_{uuid.uuid4().hex[:12]}"
    _run(_admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    _run_sync_in_thread(upgrade_database, url)
    return url


def _run_sync_in_thread(function, *args) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            function(*args)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture
def database_url(database_factory: Callable[[], str]) -> str:
    return database_factory()


@pytest.fixture(params=["postgresql", "sqlite"])
def backend_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database on each backend the services run on: PostgreSQL (production) and a SQLite file (the
    embedded `radar up` default); the test runs once per backend."""
    if request.param == "postgresql":
        return request.getfixturevalue("database_url")
    url = f"sqlite+aiosqlite:///{tmp_path / 'radar.db'}"
    _run_sync_in_thread(upgrade_database, url)  # Alembic drives an event loop of its own
    return url


@dataclass
class Stack:
    """Environment for one test's services: unique topics, consumer groups, app id and ports."""

    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        # JSON-valued variables (the Slack webhooks) are parsed by the services' own environment source, not here
        return Settings(
            **{
                key.lower(): value
                for key, value in self.env.items()
                if key.startswith(("RADAR_", "KAFKA_", "DATABASE_", "SLACK_")) and not value.startswith("{")
            }
        )

    @property
    def topics(self) -> Topics:
        return Topics(self.env["RADAR_TOPIC_PREFIX"])

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.env[f'RADAR_{service.upper()}_PORT']}{path}"


@pytest.fixture
def stack_factory(kafka_bootstrap: str) -> Callable[..., Stack]:
    """Unique topic names per test (a prefix), created up front with the project's own topic specs."""

    def make(database_url: str = "", **extra: str) -> Stack:
        tag = uuid.uuid4().hex[:10]
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "RADAR_TOPIC_PREFIX": f"t{tag}-",
            "RADAR_CONSUMER_GROUP_PREFIX": f"t{tag}",
            "RADAR_SIGNALS_APP_ID": f"t{tag}-signals",
            "RADAR_INGEST_PORT": str(free_port()),
            "RADAR_SCORING_PORT": str(free_port()),
            "RADAR_NOTIFIER_PORT": str(free_port()),
            "RADAR_SIGNALS_PORT": str(free_port()),
            "RADAR_LOG_FORMAT": "json",
        }
        if database_url:
            env["DATABASE_URL"] = database_url
        env.update(extra)
        stack = Stack(env)
        _run(ensure_topics(stack.settings))
        return stack

    return make


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


def launch_service(name: str, stack: Stack, workdir: Path, log_path: Path, ready_timeout: float = 90, **extra_env: str) -> ServiceProcess:
    """`radar serve NAME` as a real process in its own group, once its /readyz answers 200 (`ready_timeout` 0:
    at once, without waiting)."""
    env = {**os.environ, **stack.env, **extra_env}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", name],
        cwd=workdir,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    service = ServiceProcess(name, process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{service.log()[-4000:]}")
        try:
            return httpx.get(stack.url(name, "/readyz"), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if ready_timeout:
        try:
            wait_for(ready, ready_timeout, f"{name} to become ready", interval=0.25)
        except AssertionError:
            print(service.log()[-4000:])
            service.stop(signal.SIGKILL)
            raise
    return service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Starts `radar serve NAME` as a real process and waits for its /readyz; stops it after the test."""
    started: list[ServiceProcess] = []

    def start(name: str, stack: Stack, ready_timeout: float = 90, **extra_env: str) -> ServiceProcess:
        service = launch_service(name, stack, tmp_path, tmp_path / f"{name}-{len(started)}.log", ready_timeout, **extra_env)
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        service.stop()
        print(f"----- {service.name} log (tail) -----\n{service.log()[-3000:]}")


@dataclass
class SlackReceiver:
    """Answers like a Slack incoming webhook: 200 "ok", or the failures it is told to give next."""

    server: HTTPServer
    path: str = "/services/T000/B000/XXXX"
    messages: list[dict] = field(default_factory=list)
    by_alert: Counter[str] = field(default_factory=Counter)  # messages per alert id
    attempts: int = 0
    failures: ScriptedFailures = field(default_factory=ScriptedFailures)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def fail_next(self, count: int, status: int = 429, retry_after: int | None = 1) -> None:
        self.failures.add(count, status, retry_after)

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.attempts += 1
            failure = self.failures.next()
            if failure is not None:
                status, headers, _body = failure
                body = "rate_limited" if status == 429 else "internal_error"
                return Response(body, status=status, headers=headers, content_type="text/plain")
            try:
                payload = json.loads(request.get_data())
            except ValueError:
                return Response("invalid_payload", status=400, content_type="text/plain")
            if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
                return Response("no_text", status=400, content_type="text/plain")
            self.messages.append(payload)
            for block in payload.get("blocks") or []:
                if isinstance(block, dict) and str(block.get("block_id", "")).startswith("alert:"):
                    self.by_alert[block["block_id"].removeprefix("alert:")] += 1
        return Response("ok", status=200, content_type="text/plain")

    def duplicates(self) -> dict[str, int]:
        """Alert ids Slack was given more than once (a message's action block names its alert)."""
        return {alert_id: count for alert_id, count in self.by_alert.items() if count > 1}

    def wait_for_messages(self, count: int, timeout: float = 60) -> list[dict]:
        wait_for(lambda: len(self.messages) >= count, timeout, f"{count} Slack messages (have {len(self.messages)})")
        return self.messages


def serve_slack() -> SlackReceiver:
    """A Slack stand-in listening on a free loopback port; stop it with `receiver.server.stop()`."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    receiver = SlackReceiver(server)
    server.expect_request(receiver.path, method="POST").respond_with_handler(receiver.handle)
    return receiver


@pytest.fixture
def slack_factory() -> Iterator[Callable[[], SlackReceiver]]:
    servers: list[HTTPServer] = []

    def make() -> SlackReceiver:
        receiver = serve_slack()
        servers.append(receiver.server)
        return receiver

    yield make
    for server in servers:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture
def api_key_factory() -> Callable[..., str]:
    """Creates a key through the real CLI (`radar keys create`), as an operator would; `options` are its flags."""

    def make(database_url: str, name: str = "test", options: tuple[str, ...] = ()) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "keys", "create", name, *options],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder decides the marker, so `-m unit` etc. always select the right tests."""
    for item in items:
        for kind in ("unit", "integration", "e2e", "faults"):
            if f"{os.sep}{kind}{os.sep}" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, kind))
