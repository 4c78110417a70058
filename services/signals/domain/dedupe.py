"""The window of an account's last event ids: defence in depth behind ingest's own idempotency."""

from __future__ import annotations

import base64
import sys
from array import array

import xxhash


def id_hash(event_id: str) -> int:
    """The 64 bits of an event id the window keeps (xxh3: stable across processes, unlike `hash`)."""
    return xxhash.xxh3_64_intdigest(event_id.encode())


class RecentIds:
    """An account's last event ids, as 64-bit hashes in a ring: every add is O(1), and the state holds at most
    `keep` of them, 8 bytes each (stored as one base64 text, oldest first), whatever the ids look like.

    A hash shared by two ids drops the second as a duplicate: with a window of w ids that happens to an event with
    probability w / 2**64 (48 ids: 2.6e-18; at 100,000 events/s, once in ~10**11 years). tests/unit/signals/test_domain.py
    measures the rate on truncated hashes, where it is large enough to count, against that formula."""

    __slots__ = ("ring", "seen", "next")

    def __init__(self, hashes: list[int] | None = None) -> None:
        self.ring: list[int] = list(dict.fromkeys(hashes)) if hashes else []  # oldest first until it wraps
        self.seen: set[int] = set(self.ring)
        self.next = 0  # once full: where the oldest is, and the next add goes

    def add(self, hashed: int, keep: int) -> None:
        """Remembers an id not yet seen (the caller tested `seen`), forgetting the oldest past `keep`."""
        ring = self.ring
        if len(ring) < keep:
            ring.append(hashed)
        elif len(ring) == keep and keep:
            self.seen.discard(ring[self.next])
            ring[self.next] = hashed
            self.next = (self.next + 1) % keep
        else:  # a smaller window than the state was written with (or none): keep the newest
            self.ring = [*self.oldest_first(), hashed][-keep:] if keep else []
            self.seen, self.next = set(self.ring), 0
            return
        self.seen.add(hashed)

    def oldest_first(self) -> list[int]:
        return self.ring[self.next :] + self.ring[: self.next]

    def __contains__(self, event_id: str) -> bool:
        return id_hash(event_id) in self.seen

    def __len__(self) -> int:
        return len(self.ring)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecentIds) and self.oldest_first() == other.oldest_first()

    def __repr__(self) -> str:
        return f"RecentIds({len(self.ring)} ids)"

    def stored(self) -> str:
        packed = array("Q", self.oldest_first())
        if sys.byteorder == "big":
            packed.byteswap()
        return base64.b64encode(packed.tobytes()).decode()

    @classmethod
    def from_stored(cls, stored: object) -> RecentIds:
        """The base64 text this class writes; earlier states held the ids themselves, as a list or an object."""
        if isinstance(stored, str):
            packed = array("Q", base64.b64decode(stored, validate=True))
            if sys.byteorder == "big":
                packed.byteswap()
            return cls(packed.tolist())
        if isinstance(stored, list | dict) and all(isinstance(event_id, str) for event_id in stored):
            return cls([id_hash(event_id) for event_id in stored])
        raise ValueError(f"recent_event_ids must be a base64 text or a list of ids, not {type(stored).__name__}")


def remember(recent: RecentIds, event_id: str, keep: int) -> bool:
    """False when the id was seen: the event is a duplicate."""
    hashed = id_hash(event_id)
    if hashed in recent.seen:
        return False
    recent.add(hashed, keep)
    return True
