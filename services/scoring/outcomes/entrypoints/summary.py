"""The weekly (configurable) expansion summary loop scoring runs: the owner's dashboard, to Slack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.scoring.outcomes.adapters.slack import post_summary
from services.scoring.outcomes.domain.config import OutcomesConfig
from services.scoring.outcomes.handlers import Outcomes
from services.scoring.outcomes.reports import weekly_summary

log = logging.getLogger(__name__)


async def summary_every(outcomes: Outcomes, config: OutcomesConfig, webhook: Callable[[], str | None], stopping: asyncio.Event) -> None:
    """A failure waits for the next round."""
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=config.summary_every_hours * 3600)
            return
        except TimeoutError:
            pass
        try:
            await post_summary(await weekly_summary(outcomes, config), webhook())
        except Exception:
            log.exception("expansion summary failed; the next one follows on schedule")
