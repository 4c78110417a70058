"""The signals agent driven through Faust's test support: every signal and edge case, end to end
through decode, the batch, the publisher, the table write and the acknowledgement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from faust.types import TP

from services.signals.handlers import intake
from shared.event_records import partition_of
from shared.schemas import SignalType

T0 = datetime(2026, 11, 10, 12, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 3, 9, tzinfo=UTC)
_ids = iter(range(10**9))


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def account(limits: dict[str, float], domains: list[str] | None = None, at: datetime = T0, account_id: str = "acme") -> dict[str, Any]:
    return {
        "account_id": account_id,
        "name": account_id.title(),
        "domains": domains if domains is not None else ["acme.com"],
        "limits": limits,
        "updated_at": iso(at),
    }


def usage(quantity: float, at: datetime = T0, metric: str = "api_calls", event_id: str | None = None, account_id: str = "acme") -> dict:
    return {
        "id": event_id or f"e{next(_ids)}",
        "type": "usage",
        "account_id": account_id,
        "timestamp": iso(at),
        "metric": metric,
        "quantity": quantity,
    }


def user(user_id: str, email: str, team: str | None = None, at: datetime = T0, kind: str = "user_added") -> dict:
    body: dict[str, Any] = {"id": user_id, "email": email}
    if team:
        body["team"] = team
    return {"id": f"{kind}-{user_id}-{next(_ids)}", "type": kind, "account_id": "acme", "timestamp": iso(at), "user": body}


def feature(name: str, at: datetime, gated: bool = True) -> dict:
    return {"id": f"f{next(_ids)}", "type": "feature_used", "account_id": "acme", "timestamp": iso(at), "feature": name, "gated": gated}


def brief(signals) -> list[tuple]:
    return [(s.type.value, s.threshold if s.threshold is not None else (s.domain or s.team or s.feature)) for s in signals]


async def test_usage_thresholds_fire_once_each_and_state_is_written(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        assert await radar.send_events([usage(79)]) == []
        first = await radar.send_events([usage(1, event_id="crossing")])
        assert brief(first) == [("usage_threshold_crossed", 0.8)]
        signal = first[0]
        assert (signal.account_id, signal.metric, signal.value, signal.limit, signal.utilization) == ("acme", "api_calls", 80, 100, 0.8)
        assert (signal.period, signal.event_id, signal.event_timestamp) == ("2026-11-01", "crossing", T0)
        assert await radar.send_events([usage(5)]) == []
        assert brief(await radar.send_events([usage(5)])) == [("usage_threshold_crossed", 0.9)]
        assert brief(await radar.send_events([usage(5)])) == [("usage_threshold_crossed", 0.95)]
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 95
        assert radar.state("acme")["usage"]["api_calls"]["fired"] == [0.8, 0.9, 0.95]


async def test_one_event_crossing_several_thresholds_emits_the_highest(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        assert brief(await radar.send_events([usage(97)])) == [("usage_threshold_crossed", 0.95)]
        assert await radar.send_events([usage(50)]) == []


async def test_a_batch_of_many_events_emits_each_crossing_once(signals_harness) -> None:
    async with signals_harness(batch_wait_seconds=0.2) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        batch = [usage(10) for _ in range(10)]
        signals = await radar.send_events(batch)
        assert brief(signals) == [("usage_threshold_crossed", t) for t in (0.8, 0.9, 0.95)]
        assert [s.event_id for s in signals] == [event["id"] for event in batch[7:10]]
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 100


async def test_duplicate_event_ids_are_dropped(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        await radar.send_events([usage(50, event_id="same")])
        assert await radar.send_events([usage(50, event_id="same"), usage(50, event_id="same")]) == []
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 50


async def test_records_redelivered_after_a_crash_are_skipped_however_many_ids_have_passed_since(signals_harness) -> None:
    """Kafka redelivers from the committed offset, which may trail the written state by more events than any id
    window holds: the offset kept with each account's state decides, so nothing is counted twice."""
    async with signals_harness(recent_event_ids_per_account=3) as radar:
        await radar.send_accounts([account({"api_calls": 1000})])
        first = radar.agent.sent_offset
        grouped = [usage(1, event_id=f"g{n}") for n in range(5)]
        await radar.send_events([orjson.dumps(grouped)], key=b"acme")
        await radar.send_events([usage(10, event_id=f"e{n}") for n in range(5)])
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 55
        # a crash after the last state write and before its commit: the restarted worker (empty guard and
        # cache) is handed the same records at the same offsets again
        radar.log.committed[TP(radar.topics.usage_events, 0)] = first
        await radar.worker.forget()
        radar.agent.sent_offset = first
        await radar.send_events([orjson.dumps(grouped)], key=b"acme")
        await radar.send_events([usage(10, event_id=f"e{n}") for n in range(5)])
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 55, "ids g0..e1 left the 3-id window, offsets did not"
        assert await radar.send_events([usage(10, event_id="next")]) == [], "the next new record still counts"
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 65


async def test_records_skipped_on_the_way_to_the_agent_are_read_again_in_order_and_counted_once(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 1000})])
        start = radar.agent.sent_offset
        await radar.put(radar.topics.usage_events, [usage(10, event_id=f"e{n}") for n in range(5)], lost={1, 2})
        await radar.settled()
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 50, "the two skipped records were read again"
        delivered = [event.message.offset - start for event in radar.events if event.message.topic == radar.topics.usage_events]
        assert delivered == [0, 3, 4, 1, 2, 3, 4], "3 and 4 waited for the re-fetch instead of jumping the hole"
        assert radar.log.committed[TP(radar.topics.usage_events, 0)] == start + 5


async def test_a_partition_whose_records_all_were_skipped_is_read_again_once_it_stays_silent(signals_harness) -> None:
    """No later record reveals such a hole: the log's end past the position, with nothing arriving, does."""
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 1000})])
        await radar.put(radar.topics.usage_events, [usage(10, event_id=f"e{n}") for n in range(3)], lost={0, 1, 2})
        assert await radar.worker.resume_stalled(quiet_seconds=60) == 0, "not silent for long enough yet"
        assert await radar.worker.resume_stalled(quiet_seconds=0) == 1
        await radar.settled()
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 30
        assert await radar.worker.resume_stalled(quiet_seconds=0) == 0, "caught up: nothing to read again"


async def until(condition, what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("max_held", [20_000, 2], ids=["kept-in-memory", "outgrew-its-buffer-read-again"])
async def test_a_partition_taken_over_applies_no_usage_before_its_account_updates(signals_harness, monkeypatch, max_held) -> None:
    """A replay from the committed position: Faust hands over the usage backlog before the account update it
    first followed. Applied without a limit, then crossed all at once by the update, it would emit only 95 %."""
    monkeypatch.setattr(intake, "MAX_HELD_RECORDS", max_held)
    async with signals_harness() as radar:
        updates, usage_tp = TP(radar.topics.account_updates, 0), TP(radar.topics.usage_events, 0)
        await radar.put(radar.topics.account_updates, [account({"api_calls": 100})], lost={0})
        await radar.put(radar.topics.usage_events, [usage(85, event_id="u0"), usage(5, event_id="u1"), usage(5, event_id="u2")])

        def all_taken() -> bool:  # kept by the hold, or (past its buffer) dropped, to be read again
            hold = radar.worker.intake.held.get(usage_tp)
            return hold is not None and (len(hold.events) == 3 or (hold.overflowed and all(e.message.acked for e in radar.events)))

        await until(all_taken, "the agent to take the three usage records")
        assert radar.sent == [] and radar.state("acme") is None, "usage waited for the limit instead of running ahead"
        await radar.deliver_logged(updates)
        await radar.settled()
        assert [(s.threshold, s.event_id, s.value) for s in radar.sent] == [(0.8, "u0", 85.0), (0.9, "u1", 90.0), (0.95, "u2", 95.0)]
        assert not radar.worker.intake.held
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 95, "each event applied once"
        assert radar.log.committed[usage_tp] == radar.agent.sent_offset


async def test_a_hole_the_log_itself_has_is_passed_over(signals_harness) -> None:
    """Compaction or transaction markers leave offsets with no record: nothing to wait for."""
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 1000})])
        radar.agent.sent_offset += 7  # offsets no record holds
        await radar.send_events([usage(10), usage(20)])
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 30


async def test_period_roll_over_re_arms_and_sustained_high_follows(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        assert brief(await radar.send_events([usage(85)])) == [("usage_threshold_crossed", 0.8)]
        assert await radar.send_events([usage(10, at=DECEMBER)]) == []
        december = await radar.send_events([usage(72, at=DECEMBER)])
        assert brief(december) == [("usage_threshold_crossed", 0.8), ("usage_sustained_high", 0.8)]
        assert {s.period for s in december} == {"2026-12-01"}
        assert december[1].previous_value == 85


async def test_billing_anchor_decides_the_period(signals_harness) -> None:
    async with signals_harness() as radar:
        anchored = {**account({"api_calls": 100}), "billing_anchor": "2025-03-15"}
        await radar.send_accounts([anchored])
        await radar.send_events([usage(85, at=datetime(2026, 11, 14, tzinfo=UTC))])
        signals = await radar.send_events([usage(85, at=datetime(2026, 11, 15, tzinfo=UTC))])
        assert [(s.type.value, s.period) for s in signals] == [
            ("usage_threshold_crossed", "2026-11-15"),
            ("usage_sustained_high", "2026-11-15"),
        ]


async def test_raising_a_limit_re_arms_and_lowering_it_emits(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        await radar.send_events([usage(85)])
        assert await radar.send_accounts([account({"api_calls": 200})]) == []
        assert brief(await radar.send_events([usage(75)])) == [("usage_threshold_crossed", 0.8)]
        lowered = await radar.send_accounts([account({"api_calls": 165})])
        assert brief(lowered) == [("usage_threshold_crossed", 0.95)]
        assert lowered[0].event_id.startswith("account-update:")


async def test_out_of_order_events_land_in_their_period(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        await radar.send_events([usage(40, at=T0 + timedelta(days=5))])
        assert brief(await radar.send_events([usage(45, at=T0 - timedelta(days=5))])) == [("usage_threshold_crossed", 0.8)]


async def test_a_late_event_updates_history_and_fires_nothing_stale(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100, "seats": 10})])
        await radar.send_events([usage(70), usage(1, at=DECEMBER)])
        late = [usage(25), user("u1", "ann@acme.com", team="Sales"), user("u2", "bo@acme.com", team="Ops"), feature("sso", T0)]
        assert await radar.send_events(late) == []
        state = radar.state("acme")
        assert state["history"]["2026-11-01"]["api_calls"]["used"] == 95
        assert state["seen_domains"] == ["acme.com"] and state["teams"] == ["sales", "ops"]
        # the corrected November (95 %) counts for December's sustained-high
        assert brief(await radar.send_events([usage(80, at=DECEMBER)])) == [
            ("usage_threshold_crossed", 0.8),
            ("usage_sustained_high", 0.8),
        ]


async def test_seats_count_against_the_seat_limit(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"seats": 5}, domains=[])])
        for index in range(3):
            assert await radar.send_events([user(f"u{index}", f"u{index}@gmail.com")]) == []
        assert brief(await radar.send_events([user("u3", "u3@gmail.com")])) == [("seat_threshold_crossed", 0.8)]
        await radar.send_events([user("u0", "u0@gmail.com", kind="user_removed")])
        assert radar.state("acme")["usage"]["seats"]["used"] == 3
        assert await radar.send_events([user("u4", "u4@gmail.com")]) == []  # back to 80 %: already spent
        signals = await radar.send_events([user("u5", "u5@gmail.com")])
        assert [(s.type, s.threshold, s.value, s.limit) for s in signals] == [(SignalType.SEAT_THRESHOLD_CROSSED, 0.95, 5, 5)]


async def test_new_domain_users_and_free_mail_never_counts(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({}, domains=["acme.com"])])
        personal = [user("a", "a@gmail.com"), user("b", "b@outlook.com"), user("c", "c@mailinator.com"), user("d", "d@other.io")]
        assert await radar.send_events(personal) == []
        first = await radar.send_events([user("e", "eve@acme.com"), user("f", "fay@acme.com"), user("g", "gus@eu.acme.com")])
        assert brief(first) == [("new_domain_user", "acme.com"), ("new_domain_user", "eu.acme.com")]
        assert first[0].user.email == "eve@acme.com"


async def test_new_team_adoption(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({}, domains=[])])
        assert await radar.send_events([user("a", "a@gmail.com", team="Engineering")]) == []
        signals = await radar.send_events([user("b", "b@gmail.com", team="Finance"), user("c", "c@gmail.com", team="finance")])
        assert brief(signals) == [("new_team_adoption", "Finance")]


async def test_premium_feature_interest(signals_harness) -> None:
    async with signals_harness(premium_feature_tries=3, premium_feature_window_days=7) as radar:
        await radar.send_accounts([account({})])
        tries = [feature("sso", T0 - timedelta(days=8)), feature("sso", T0 - timedelta(days=1)), feature("dashboards", T0, gated=False)]
        assert await radar.send_events(tries) == []
        signals = await radar.send_events([feature("sso", T0)])
        assert brief(signals) == []  # the first try fell out of the 7 days
        signals = await radar.send_events([feature("sso", T0 + timedelta(hours=1))])
        assert [(s.type.value, s.feature, s.tries) for s in signals] == [("premium_feature_interest", "sso", 3)]


async def test_usage_growth_week_over_week(signals_harness) -> None:
    async with signals_harness(growth_rate=0.2, growth_min_previous_week=100) as radar:
        await radar.send_accounts([account({})])
        monday = datetime(2026, 11, 2, 10, tzinfo=UTC)
        await radar.send_events([usage(100, at=monday)])
        assert await radar.send_events([usage(120, at=monday + timedelta(days=7))]) == []
        signals = await radar.send_events([usage(5, at=monday + timedelta(days=8))])
        assert [(s.type.value, s.value, s.previous_value, s.growth) for s in signals] == [("usage_growth", 125, 100, 0.25)]


async def test_bad_records_are_rejected_without_stopping_the_agent(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        bad = [b"not json", {"id": "x", "type": "usage", "account_id": "acme"}, {**usage(1), "quantity": -5}]
        assert await radar.send_events(bad) == []
        assert await radar.send_events([usage(10, account_id="acme")], key=b"other") == []  # key is not the account
        assert brief(await radar.send_events([usage(90)])) == [("usage_threshold_crossed", 0.9)]


async def test_each_account_is_written_to_its_own_partition_changelog(signals_harness) -> None:
    async with signals_harness(batch_wait_seconds=0.2) as radar:
        # one batch mixing partitions: the current event is a3's (partition 3) when the batch is written
        await radar.put(radar.topics.usage_events, [usage(1, account_id="a1")], partition=1)
        await radar.put(radar.topics.usage_events, [usage(9, account_id="a2"), usage(2, account_id="a2")], partition=2)
        await radar.put(radar.topics.usage_events, [usage(3, account_id="a3")], partition=3)
        await radar.settled()
        changelog = radar.worker.table.changelog_topic.get_topic_name()
        written = sorted((topic, orjson.loads(key), partition) for topic, key, _, partition in radar.changelog)
        assert written == [(changelog, "a1", 1), (changelog, "a2", 2), (changelog, "a3", 3)]  # once per account, own partition
        assert orjson.loads(radar.changelog[-1][2])["account_id"] in {"a1", "a2", "a3"}
        assert radar.state("a2")["usage"]["api_calls"]["used"] == 11


async def test_no_state_is_written_and_nothing_acknowledged_when_signals_cannot_be_delivered(signals_harness) -> None:
    failing = True

    async def publish(signals) -> None:
        if failing:
            raise ConnectionError("broker gone")

    async with signals_harness(publish=publish) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        await radar.put(radar.topics.usage_events, [usage(85)])
        with pytest.raises(AssertionError, match=r"offsets \[1\] were not acknowledged"):
            await radar.settled(timeout=1)
        # the crossing was never delivered: its state is not written, its event stays uncommitted (replayed)
        assert radar.state("acme")["usage"] == {}
        assert radar.worker.pending == [] and radar.worker.states.dirty == {}


async def test_a_delivery_that_fails_after_the_send_keeps_the_state_unwritten(signals_harness) -> None:
    """Signals are sent without waiting; the flush awaits their deliveries before it writes any state."""

    async def publish(signals) -> list[asyncio.Future]:
        lost = asyncio.get_running_loop().create_future()
        lost.set_exception(ConnectionError("broker gone before it acknowledged"))
        return [lost]

    # the agent never flushes on its own here: the test's flush is the one that meets the failure
    async with signals_harness(publish=publish, state_flush_seconds=60) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        written = len(radar.changelog)
        await radar.put(radar.topics.usage_events, [usage(85)])
        with pytest.raises(ConnectionError, match="broker gone"):
            await radar.settled(timeout=1)  # the flush it runs raises
        assert not radar.events[-1].message.acked
        assert len(radar.changelog) == written  # nothing written after the failed delivery
        assert radar.state("acme")["usage"] == {}
        assert radar.worker.pending == [] and radar.worker.states.dirty == {} and radar.worker.deliveries == []


async def test_after_a_failed_delivery_the_worker_reads_again_from_its_committed_position(signals_harness) -> None:
    failures = [ConnectionError("broker gone before it acknowledged")]

    async def publish(signals) -> list[asyncio.Future]:
        if not failures:
            return []
        lost = asyncio.get_running_loop().create_future()
        lost.set_exception(failures.pop())
        return [lost]

    async with signals_harness(publish=publish, state_flush_seconds=60) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        await radar.put(radar.topics.usage_events, [usage(85, event_id="e1")])
        with pytest.raises(ConnectionError):
            await radar.settled(timeout=1)
        radar.events.clear()  # what the worker dropped is Faust's to forget; the log still holds it
        signals = await radar.send_events([usage(1, event_id="e2")])
        # e1 read again from the committed position: counted once, its crossing sent again under the same id
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 86
        assert [(s.event_id, s.threshold) for s in radar.sent] == [("e1", 0.8), ("e1", 0.8)]
        assert signals == [radar.sent[1]] and radar.sent[0].signal_id == radar.sent[1].signal_id


async def _processed(radar, count: int) -> None:
    """Until `count` records are processed and waiting for a flush (not acknowledged: nothing is written yet)."""
    await until(lambda: len(radar.worker.pending) >= count, f"{count} records processed", timeout=5)


async def _second_batch_behind_a_held_write(radar, first: dict, second: dict) -> asyncio.Future:
    """`first` processed and its flush's write held at Kafka (the gate returned), then `second` processed behind it."""
    gate = radar.changelog_sender.gate = asyncio.get_running_loop().create_future()
    await radar.put(radar.topics.usage_events, [first])
    await _processed(radar, 1)
    await radar.worker.flush(wait=False)  # what the agent does when a flush is due
    await radar.put(radar.topics.usage_events, [second])
    await _processed(radar, 1)
    return gate


async def test_batches_go_on_while_a_flush_is_written_and_each_flush_commits_only_what_it_wrote(signals_harness) -> None:
    async with signals_harness(state_flush_seconds=60) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        usage_tp = TP(radar.topics.usage_events, 0)
        # the write waits for Kafka; the next batch is processed (its crossing sent) all the same
        gate = await _second_batch_behind_a_held_write(radar, usage(50, event_id="first"), usage(35, event_id="second"))
        assert brief(radar.sent) == [("usage_threshold_crossed", 0.8)]
        assert usage_tp not in radar.log.committed and radar.state("acme")["usage"] == {}  # nothing acknowledged yet
        gate.set_result(None)
        await until(lambda: usage_tp in radar.log.committed, "the first flush committed", timeout=5)
        first, second = radar.events[-2:]
        assert radar.log.committed[usage_tp] == first.message.offset + 1  # the second is not in that flush's state
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 50
        assert first.message.acked and not second.message.acked
        radar.changelog_sender.gate = None
        await radar.settled()
        assert radar.log.committed[usage_tp] == second.message.offset + 1 and radar.state("acme")["usage"]["api_calls"]["used"] == 85


async def test_an_account_the_cache_lets_go_while_its_write_is_in_flight_is_read_back_from_that_write(signals_harness) -> None:
    async with signals_harness(state_flush_seconds=60) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        radar.worker.states.max_cached = 0  # every flush empties the cache
        radar.changelog_sender.gate = asyncio.get_running_loop().create_future()
        await radar.put(radar.topics.usage_events, [usage(50)])
        await _processed(radar, 1)
        await radar.worker.flush(wait=False)
        assert radar.worker.states.cache == {} and radar.state("acme")["usage"] == {}
        # read from the table, acme would start again from nothing and 35 would cross no threshold
        await radar.put(radar.topics.usage_events, [usage(35)])
        await _processed(radar, 1)
        assert brief(radar.sent) == [("usage_threshold_crossed", 0.8)] and radar.sent[0].value == 85


async def test_a_flush_whose_write_fails_in_the_background_commits_nothing_and_the_worker_reads_again(signals_harness) -> None:
    async with signals_harness(state_flush_seconds=60) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        usage_tp = TP(radar.topics.usage_events, 0)
        gate = await _second_batch_behind_a_held_write(radar, usage(85, event_id="e1"), usage(5, event_id="e2"))
        gate.set_exception(ConnectionError("changelog partition gone"))
        with pytest.raises(ConnectionError, match="changelog partition gone"):
            await radar.worker.flush()  # the next flush meets the failure first
        # the table holds only what Kafka acknowledged; no position moved; the cache that outran it is gone
        assert radar.state("acme")["usage"] == {} and usage_tp not in radar.log.committed
        assert radar.worker.pending == [] and radar.worker.states.cache == {} and radar.worker.staged == {}
        radar.changelog_sender.gate = None
        radar.events.clear()  # what the worker dropped is Faust's to forget; the log still holds it
        await radar.send_events([usage(1, event_id="e3")])
        # e1 and e2 read again from the committed position: each counted once, their crossings sent again, same ids
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 91
        assert radar.log.committed[usage_tp] == radar.events[-1].message.offset + 1
        assert [(s.event_id, s.threshold) for s in radar.sent] == [("e1", 0.8), ("e2", 0.9)] * 2
        assert [s.signal_id for s in radar.sent[:2]] == [s.signal_id for s in radar.sent[2:]]


async def test_a_record_may_carry_many_events_of_its_partition(signals_harness) -> None:
    async with signals_harness() as radar:
        home = partition_of("acme", 4)
        assert partition_of("globex", 4) != home
        await radar.send_accounts([account({"api_calls": 100}), account({"api_calls": 10}, account_id="initech")])
        neighbour = partition_of("initech", 4)
        grouped = orjson.dumps([usage(30), usage(30), usage(25, event_id="third"), usage(10)])
        signals = await radar.send_events([grouped], partition=home)
        assert [(s.threshold, s.event_id) for s in signals] == [(0.8, "third"), (0.95, signals[1].event_id)]
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 95
        # several accounts in one record, as a producer grouping by partition sends them
        mixed = orjson.dumps([usage(9, account_id="initech"), usage(1, account_id="umbrella")])
        assert [(s.account_id, s.threshold) for s in await radar.send_events([mixed], partition=neighbour)] == [("initech", 0.9)]
        assert radar.state("umbrella")["usage"]["api_calls"]["used"] == 1


async def test_bad_and_misplaced_events_in_a_grouped_record_are_rejected_alone(signals_harness) -> None:
    async with signals_harness() as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        bad = {"id": "bad", "type": "usage", "account_id": "acme"}
        grouped = orjson.dumps([usage(40), bad, usage(45, account_id="globex"), usage(41)])
        assert brief(await radar.send_events([grouped], partition=partition_of("acme", 4))) == [("usage_threshold_crossed", 0.8)]
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 81
        assert radar.state("globex") is None  # it belongs to another partition: another worker's account


async def test_once_closing_the_write_in_flight_ends_and_no_flush_starts_after_it(signals_harness) -> None:
    """At shutdown the positions client closes next: a flush started after it would fail its commit."""
    async with signals_harness(state_flush_seconds=60) as radar:
        await radar.send_accounts([account({"api_calls": 100})])
        usage_tp = TP(radar.topics.usage_events, 0)
        gate = await _second_batch_behind_a_held_write(radar, usage(50, event_id="written"), usage(10, event_id="left"))
        closing = asyncio.create_task(radar.worker.close())
        assert not (await asyncio.wait({closing}, timeout=0.1))[0], "close waits for the write in flight"
        gate.set_result(None)
        await asyncio.wait_for(closing, timeout=5)
        written, left = radar.events[-2:]
        assert radar.log.committed[usage_tp] == written.message.offset + 1
        await radar.worker.flush()
        assert radar.worker.writing is None and radar.log.committed[usage_tp] == written.message.offset + 1
        assert radar.state("acme")["usage"]["api_calls"]["used"] == 50 and not left.message.acked  # processed again after a restart


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_each_account_is_kept_in_its_own_partition_and_read_back_from_there(signals_harness, tmp_path, store) -> None:
    """A batch mixes partitions. RocksDB keeps a database per partition, and Faust's own table access picks the one
    of the event taken last: every account must be written to, and read back from, its own partition's."""
    accounts = {partition_of(f"tenant-{index}", 4): f"tenant-{index}" for index in range(40)}
    assert sorted(accounts) == [0, 1, 2, 3]
    async with signals_harness(store=store, data_dir=tmp_path) as harness:
        for partition, account_id in accounts.items():
            await harness.send_accounts([account({"api_calls": 100}, account_id=account_id)], partition=partition)
        for partition, account_id in accounts.items():  # one batch over the four partitions
            await harness.put(harness.topics.usage_events, [usage(85, account_id=account_id)], partition=partition)
        await harness.settled()
        harness.worker.states.forget()  # what follows is read back from the table, not the worker's cache
        second = len(harness.sent)
        for partition, account_id in accounts.items():
            await harness.put(harness.topics.usage_events, [usage(6, account_id=account_id)], partition=partition)
        await harness.settled()

        # 85 + 6 = 91 %: the 90 % crossing needs the 85 read back; a state looked up in another partition is empty
        assert sorted((s.account_id, s.threshold) for s in harness.sent[:second]) == sorted((a, 0.8) for a in accounts.values())
        assert sorted((s.account_id, s.threshold) for s in harness.sent[second:]) == sorted((a, 0.9) for a in accounts.values())
        for account_id in accounts.values():
            assert harness.state(account_id)["usage"]["api_calls"]["used"] == 91
        if store == "rocksdb://":
            tables = harness.worker.table.data
            # memory per partition database bounded (memtables + block cache): Faust's defaults allow ~2.2 GiB each
            options = tables.rocksdb_options
            assert options.write_buffer_size * options.max_write_buffer_number + options.block_cache_size <= 64 * 1024**2
            for partition, account_id in accounts.items():
                holding = [p for p in range(4) if tables._db_for_partition(p).get(orjson.dumps(account_id)) is not None]
                assert holding == [partition], f"{account_id} is kept in partitions {holding}, its records are on {partition}"
