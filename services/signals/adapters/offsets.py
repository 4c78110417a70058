"""Which input records may reach the rules: each partition's records in offset order, each once, none skipped.

Faust can hand an agent a partition's records with a hole in them: around a rebalance or the recovery at
start-up it may fetch from a stale position, skip what it fetched ("flow control" or generation checks) and
then drop the re-fetched copies as already read (faust-streaming issues #216 and #221 fixed some such paths,
not all). A state that applied the records after a hole would record their offsets and, after any restart,
treat the lost ones as already applied. So the worker checks every record against the position it expects:
a hole sends the consumer back to the missing offset, and what arrives meanwhile waits for the re-fetch.
Offsets are committed from these positions, after the state covering them is written.

Pure and synchronous; the worker asks the broker what the decisions below need (adapters/positions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

Partition = TypeVar("Partition")


class Admission(Enum):
    APPLY = "apply"  # the next record of its partition
    STALE = "stale"  # before the position: already applied in this assignment (a re-fetched copy)
    WAIT = "wait"  # the consumer was sent back to a missing offset; this one comes again after it
    HOLE = "hole"  # after the position: records were skipped, unless the log has none there (compaction)
    UNKNOWN = "unknown"  # the first record since the assignment: the position must be read from the group first
    HELD = "held"  # usage of a partition whose account updates are still being read up to their end (the worker's call)


@dataclass
class OffsetGuard(Generic[Partition]):
    expected: dict[Partition, int] = field(default_factory=dict)
    awaiting: dict[Partition, int] = field(default_factory=dict)

    def admit(self, partition: Partition, offset: int) -> Admission:
        awaited = self.awaiting.get(partition)
        if awaited is not None:
            if offset != awaited:
                return Admission.WAIT
            del self.awaiting[partition]
        expected = self.expected.get(partition)
        if expected is None:
            return Admission.UNKNOWN
        if offset < expected:
            return Admission.STALE
        if offset > expected:
            return Admission.HOLE
        self.expected[partition] = offset + 1
        return Admission.APPLY

    def start(self, partition: Partition, position: int) -> None:
        """The committed position (or the log's start): where this assignment's records begin."""
        self.expected[partition] = position

    def go_back(self, partition: Partition) -> int:
        """The records from the expected offset exist but were skipped: wait for them to come again."""
        position = self.expected[partition]
        self.awaiting[partition] = position
        return position

    def accept_gap(self, partition: Partition, offset: int) -> None:
        """The log has no records between the position and this one (compacted away, transaction markers)."""
        self.expected[partition] = offset + 1

    def positions(self, partitions: set[Partition]) -> dict[Partition, int]:
        """What may be committed once the state covering every applied record is written."""
        return {partition: self.expected[partition] for partition in partitions if partition in self.expected}

    def reset(self) -> None:
        """On a rebalance: the next assignment starts again from the committed positions."""
        self.expected.clear()
        self.awaiting.clear()
