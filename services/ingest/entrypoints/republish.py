"""Give a broker that lost its topics the accounts and plans the database still has.

The embedded broker behind `radar up` (shared/embedded_broker.py) keeps everything in memory, while SQLite keeps
what ingest declared. Restarted, signals would read an empty account-updates topic and know no limits, so no
usage crossing would ever alert again. `radar up` calls this at start, before signals runs, to publish each
declaration once more exactly as ingest published it (same key, same partition, same `updated_at`, so scoring's
newer-wins rule keeps whatever it already has).
"""

from __future__ import annotations

from services.ingest.bootstrap import declarations_publishing
from services.ingest.handlers import Republished, republish
from shared.settings import Settings
from shared.topics import Topics


async def republish_declarations(settings: Settings) -> Republished:
    async with declarations_publishing(settings) as (declarations, publisher):
        return await republish(declarations, publisher, Topics.from_settings(settings))
