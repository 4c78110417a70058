"""The local default channel: print the alert and append it as one JSON line to the alert log.

The log only ever holds whole lines: a write that fails half-way (a full disk) is cut back off before the
delivery is retried, and a line left torn by a crash mid-write is cut off before the next one is appended."""

from __future__ import annotations

import asyncio
import errno
import os
import sys
from pathlib import Path

import orjson

from services.notifier.adapters.channels.base import RetryableDelivery
from services.notifier.domain.messages import plain_text
from shared.schemas import Alert

TORN_TAIL_SEARCH = 1 << 20  # how far back a torn last line is looked for (a line is a few KB)


class ConsoleChannel:
    name = "console"
    seconds_per_message = 0.0
    disk_full_retry_s = 1.0  # how soon a full disk is tried again: it frees up when someone deletes a file

    def __init__(self, alert_log: Path) -> None:
        self._path = alert_log

    async def send(self, alert: Alert, key: str) -> None:
        line = orjson.dumps({"alert": alert.model_dump(mode="json"), "text": plain_text(alert), "key": key}) + b"\n"
        try:
            await asyncio.to_thread(append_whole_line, self._path, line)
        except OSError as exc:
            # a full disk is the receiver pausing, not this alert failing: it waits in the queue without spending attempts
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = f"alert log {self._path} not writable: {exc.strerror or exc}"
            raise RetryableDelivery(reason, self.disk_full_retry_s if full else None, rate_limited=full) from exc
        print(f"🔔 {plain_text(alert)}", file=sys.stdout, flush=True)


async def print_text(text: str) -> None:
    """Where a message with no Slack channel to go to (the digest) is shown."""
    print(text, flush=True)


def append_whole_line(path: Path, line: bytes) -> None:
    """Appends `line` (ending in a newline) whole or not at all: on failure the file is cut back to its size before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = _cut_torn_tail(fd)
        written = 0
        try:
            while written < len(line):
                written += os.write(fd, line[written:])  # a nearly full disk takes part of a write
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _cut_torn_tail(fd: int) -> int:
    """The file's size once a last line without its newline (a crash between a partial write and its cut) is gone."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = max(0, size - TORN_TAIL_SEARCH)
    tail = os.pread(fd, size - start, start)
    keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
    os.ftruncate(fd, keep)
    return keep
