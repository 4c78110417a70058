"""`radar dlq list|replay` (services/cli.py): read every dead letter up to the current end, and replay them."""

from __future__ import annotations

from typing import Any

from services.notifier import bootstrap
from services.notifier.adapters import dlq
from services.notifier.handlers.commands import replay_dead_letters
from shared.settings import Settings
from shared.topics import Topics


async def read_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    return await dlq.read_dead_letters(settings.kafka_bootstrap_servers, Topics.from_settings(settings).notifications_dlq)


async def replay(settings: Settings, letters: list[dict[str, Any]]) -> int:
    """Each delivery becomes pending again with fresh attempts; ones since delivered are left alone."""
    async with bootstrap.outbox_only(settings) as outbox:
        return await replay_dead_letters(outbox, letters)
