"""A receiver that cannot take messages for a while (Slack down, a full alert-log disk) delays alerts, never drops
or tears them: the alert log keeps whole lines, a full disk waits like a 429, and the DLQ is for messages that will
not go through, not for outages."""

from __future__ import annotations

import errno
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from services.notifier.adapters.channels import console_log
from services.notifier.adapters.channels.base import RetryableDelivery
from services.notifier.adapters.channels.console_log import ConsoleChannel, append_whole_line
from services.notifier.adapters.outbox import DueDelivery
from services.notifier.domain.config import NotifierConfig
from services.notifier.domain.retry import gives_up
from services.notifier.handlers.delivery import Sender
from shared.schemas import Alert, utcnow
from tests.unit.notifier.test_channels import alert


def disk_fills_after(monkeypatch: pytest.MonkeyPatch, free_bytes: int) -> None:
    """os.write as on a disk with `free_bytes` left: a write takes what fits, then ENOSPC."""
    real_write = console_log.os.write
    left = [free_bytes]

    def write(fd: int, data: bytes) -> int:
        if left[0] == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[: left[0]]))
        left[0] -= written
        return written

    monkeypatch.setattr(console_log.os, "write", write)


def test_a_write_cut_short_by_a_full_disk_leaves_no_torn_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "alerts.ndjson"
    append_whole_line(log, b'{"n": 1}\n')
    disk_fills_after(monkeypatch, 5)
    with pytest.raises(OSError) as raised:
        append_whole_line(log, b'{"n": 2, "padding": "xxxxxxxx"}\n')
    assert raised.value.errno == errno.ENOSPC
    assert log.read_bytes() == b'{"n": 1}\n', "the 5 bytes that fit were cut back off"
    monkeypatch.undo()
    append_whole_line(log, b'{"n": 2}\n')
    assert log.read_bytes() == b'{"n": 1}\n{"n": 2}\n'


def test_a_line_torn_by_a_crash_mid_write_is_cut_before_the_next_one(tmp_path: Path) -> None:
    log = tmp_path / "alerts.ndjson"
    log.write_bytes(b'{"n": 1}\n{"n": 2, "tor')
    append_whole_line(log, b'{"n": 3}\n')
    assert log.read_bytes() == b'{"n": 1}\n{"n": 3}\n'
    log.write_bytes(b'{"only": "torn')
    append_whole_line(log, b'{"n": 4}\n')
    assert log.read_bytes() == b'{"n": 4}\n'


async def test_a_full_disk_is_a_queue_to_wait_in_and_other_errors_are_failed_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "alerts.ndjson"
    console = ConsoleChannel(log)
    disk_fills_after(monkeypatch, 0)
    with pytest.raises(RetryableDelivery) as full:
        await console.send(alert(), "alert:s1:console")
    assert full.value.rate_limited and full.value.retry_after_s == ConsoleChannel.disk_full_retry_s
    monkeypatch.undo()
    blocked = ConsoleChannel(tmp_path / "a-file" / "alerts.ndjson")
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(RetryableDelivery) as broken:
        await blocked.send(alert(), "alert:s1:console")
    assert not broken.value.rate_limited
    await console.send(alert(), "alert:s1:console")
    [line] = log.read_bytes().splitlines()
    assert orjson.loads(line)["key"] == "alert:s1:console"


def test_the_dlq_takes_a_delivery_only_after_enough_attempts_and_enough_time() -> None:
    day = 86_400
    assert not gives_up(8, 120, max_attempts=8, retry_for_s=day), "a two-minute outage drops nothing"
    assert not gives_up(7, 2 * day, max_attempts=8, retry_for_s=day)
    assert gives_up(8, day, max_attempts=8, retry_for_s=day)
    assert gives_up(1, 0, max_attempts=1, retry_for_s=0)


class FakeOutbox:
    """What the sender asks of the outbox, recorded."""

    def __init__(self) -> None:
        self.retries: list[tuple[int, float]] = []
        self.deferred: list[int] = []
        self.sent: list[int] = []
        self.released: list[list[int]] = []

    async def mark_retry(self, delivery_id: int, delay_s: float, error: str) -> None:
        self.retries.append((delivery_id, delay_s))

    async def defer(self, delivery_id: int, until: object) -> None:
        self.deferred.append(delivery_id)

    async def mark_sent(self, delivery_id: int) -> bool:
        self.sent.append(delivery_id)
        return False

    async def release(self, delivery_ids: list[int]) -> None:
        self.released.append(delivery_ids)

    async def mark_dead(self, delivery_id: int, error: str) -> None:
        pass


class FlakyChannel:
    """Fails with the given errors in turn, then takes every message."""

    name = "slack:ch"
    seconds_per_message = 0.0

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)

    async def send(self, alert: Alert, key: str) -> None:
        if self.errors:
            raise self.errors.pop(0)


def due(delivery_id: int, attempts: int = 0, age: timedelta = timedelta(0)) -> DueDelivery:
    return DueDelivery(delivery_id, "slack:ch", attempts, alert().model_copy(update={"created_at": utcnow() - age}))


def sender(outbox: FakeOutbox, channel: FlakyChannel, dead: list[int], **config: float) -> Sender:
    async def dead_letter(delivery: DueDelivery, error: str) -> None:
        dead.append(delivery.delivery_id)

    return Sender(outbox, {"slack:ch": channel}, NotifierConfig(**config), dead_letter)


async def test_an_outage_spends_attempts_but_reaches_the_dlq_only_when_the_alert_is_old() -> None:
    outbox, dead = FakeOutbox(), []
    channel = FlakyChannel(RetryableDelivery("slack answered 500"), RetryableDelivery("slack answered 500"))
    send = sender(outbox, channel, dead, max_attempts=8, retry_for_seconds=3600)
    await send.deliver(due(1, attempts=7, age=timedelta(minutes=2)))
    assert dead == [] and [delivery for delivery, _ in outbox.retries] == [1]
    await send.deliver(due(2, attempts=7, age=timedelta(hours=2)))
    assert dead == [2]


async def test_a_429_spends_no_attempt_and_a_recovered_channel_pulls_its_backed_off_deliveries_forward() -> None:
    outbox, dead = FakeOutbox(), []
    channel = FlakyChannel(RetryableDelivery("slack answered 500", retry_after_s=120), RetryableDelivery("slack answered 500"))
    send = sender(outbox, channel, dead, backoff_base_seconds=0.001)
    await send.deliver(due(1))  # backs off 120 s
    await send.deliver(due(2))  # backs off a millisecond: due again at once, so it is not pulled forward
    await send.deliver(due(3))  # the channel is back
    assert outbox.sent == [3] and outbox.released == [[1]]
    channel.errors = [RetryableDelivery("slack answered 429", retry_after_s=5, rate_limited=True)]
    await send.deliver(due(4, attempts=7))
    await send.deliver(due(5, attempts=7))  # the channel is paused: deferred, not tried
    assert outbox.deferred == [4, 5] and [delivery for delivery, _ in outbox.retries] == [1, 2] and dead == []
