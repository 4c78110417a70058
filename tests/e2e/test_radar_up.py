"""`radar up --demo` as a newcomer runs it: embedded broker, SQLite, alerts within a minute, Ctrl-C cleans up."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.helpers import free_port, wait_for


def processes_with_marker(marker: str) -> list[int]:
    """Every live process whose environment carries `marker`: children inherit it, so leftovers show."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def console_shows_the_demo_accounts(printed: str) -> None:
    """`radar up --demo` printed the console's URL and a read key; logged in with it, the accounts page lists
    every demo account (the alert came within the minute, so this is within it too)."""
    from services.demo import ACCOUNTS

    found = re.search(r"web console (http://\S+/ui) — log in with the demo's read key (rdr_\S+)", printed)
    assert found, f"no console URL printed:\n{printed[-3000:]}"
    url, key = found.groups()
    with httpx.Client(timeout=10, follow_redirects=True) as browser:
        assert browser.post(f"{url}/login", data={"key": key}).status_code == 200  # redirected to the accounts page
        names = [html.escape(account.name) for account in ACCOUNTS]
        wait_for(lambda: all(name in browser.get(f"{url}/accounts").text for name in names), 30, "every demo account on the console")


def logged_alerts(alert_log: Path) -> list[dict]:
    """The alerts `radar up` wrote to its alert log so far (none while the file does not exist)."""
    if not alert_log.exists():
        return []
    return [json.loads(line) for line in alert_log.read_text().splitlines() if line.strip()]


def ctrl_c(process: subprocess.Popen[bytes]) -> int:
    """What Ctrl-C in a terminal sends, to the whole group; killed if it does not end within 90 s."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def radar_up_env(marker: str) -> dict[str, str]:
    """The environment of a newcomer's `radar up`: no Kafka, database or Slack of the suite's, free ports."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SLACK_WEBHOOK_URL", "RADAR_ALERT_LOG", "RADAR_TOPIC_PREFIX"}
    }
    env.update(
        {
            "RADAR_TEST_MARKER": marker,
            "RADAR_INGEST_PORT": str(free_port()),
            "RADAR_SCORING_PORT": str(free_port()),
            "RADAR_NOTIFIER_PORT": str(free_port()),
            "RADAR_SIGNALS_PORT": str(free_port()),
        }
    )
    return env


def test_radar_up_demo_shows_alerts_within_a_minute_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    marker = f"radar-up-{uuid.uuid4().hex}"
    env = radar_up_env(marker)
    output = tmp_path / "radar-up.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=output.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    alert_log = tmp_path / ".radar" / "alerts.ndjson"
    try:

        def alerts() -> list[dict]:
            if process.poll() is not None:
                raise AssertionError(f"radar up exited with {process.returncode}:\n{output.read_text()[-5000:]}")
            return logged_alerts(alert_log)

        try:
            found = wait_for(alerts, 60, "the first demo alert in .radar/alerts.ndjson", interval=0.5)
        except AssertionError:
            print(output.read_text()[-8000:])
            raise
        first = found[0]
        assert first["alert"]["account_name"] and "Score" in first["text"]
        # printed to the terminal as well: after the alert log, and relayed through radar up's pipe, so a moment later
        wait_for(lambda: "🔔" in output.read_text(), 10, "the alert printed to radar up's terminal")
        console_shows_the_demo_accounts(output.read_text())
    finally:
        code = ctrl_c(process)
    assert code == 0, output.read_text()[-5000:]
    wait_for(lambda: processes_with_marker(marker) == [], 10, f"every process of radar up to exit (left: {processes_with_marker(marker)})")
    assert "stopped; no process left behind" in output.read_text()
