"""`radar up` restarted on its memory-only embedded broker still knows the accounts SQLite kept, and still alerts."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.e2e.test_radar_up import ctrl_c, logged_alerts, processes_with_marker, radar_up_env
from tests.helpers import wait_for

ACCOUNT = {"name": "Acme Corp", "domains": ["acme.com"], "plan": "growth", "limits": {"api_calls": 10_000}, "arr": 48_000}


@contextlib.contextmanager
def radar_up(cwd: Path, env: dict[str, str], run: int) -> Iterator[Path]:
    """One `radar up` run until every service is ready; Ctrl-C on leaving, which must end it cleanly."""
    output = cwd / f"radar-up-{run}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up"],
        cwd=cwd,
        env=env,
        stdout=output.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"radar up exited with {process.returncode}:\n{output.read_text()[-5000:]}")
        return "all services ready" in output.read_text()

    try:
        wait_for(ready, 120, f"radar up (run {run}) to be ready", interval=0.5)
        yield output
    finally:
        code = ctrl_c(process)
    assert code == 0, output.read_text()[-5000:]


def usage(quantity: float) -> dict:
    now = datetime.now(UTC).isoformat()
    return {"id": str(uuid.uuid4()), "type": "usage", "account_id": "acme", "timestamp": now, "metric": "api_calls", "quantity": quantity}


def test_a_crossing_after_a_restart_of_radar_up_still_alerts(tmp_path: Path) -> None:
    marker = f"radar-up-restart-{uuid.uuid4().hex}"
    env = radar_up_env(marker)
    ingest = f"http://127.0.0.1:{env['RADAR_INGEST_PORT']}"
    signals_state = f"http://127.0.0.1:{env['RADAR_SIGNALS_PORT']}/v1/state/acme"
    alert_log = tmp_path / ".radar" / "alerts.ndjson"

    with radar_up(tmp_path, env, 1):
        created = subprocess.run(
            [sys.executable, "-m", "services.cli", "keys", "create", "restart"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = created.stdout.split()[0]
        with httpx.Client(base_url=ingest, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            assert client.put("/v1/accounts/acme", json=ACCOUNT).status_code == 200
            wait_for(lambda: httpx.get(signals_state).json().get("limits") == {"api_calls": 10_000}, 60, "signals to know acme's limits")

    with radar_up(tmp_path, env, 2) as output:
        with httpx.Client(base_url=ingest, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            sent = client.post("/v1/events", json={"events": [usage(4_000), usage(4_200)]})  # 82 % of the declared limit
            assert (sent.status_code, sent.json()) == (202, {"accepted": 2, "duplicates": 0})
            try:
                found = wait_for(lambda: logged_alerts(alert_log), 60, "an alert for acme's crossing after the restart", interval=0.5)
            except AssertionError:
                print(output.read_text()[-8000:])
                raise
        assert "re-published 1 account(s)" in output.read_text()
    assert found[0]["alert"]["account_id"] == "acme"
    assert "crossed 80%" in found[0]["text"] and "8200 / 10000" in found[0]["text"]
    wait_for(lambda: processes_with_marker(marker) == [], 10, "every process of radar up to exit")
