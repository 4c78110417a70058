"""A generated year for a few hundred accounts with known outcomes goes through the real pipeline
(`radar replay` → ingest → Kafka → signals → scoring, every service a process, real PostgreSQL), and the
report's numbers and the per-signal precision and lift are checked against values computed here, from the
generated history and the alerts the pipeline raised, independently of the outcomes code."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.scoring.adapters.tables import AlertRecord, RevenueChange, SignalRecord
from shared.db import create_engine, sessionmaker
from shared.event_records import partition_of
from tests.helpers import await_for

LIMIT = 10_000
YEAR_START, YEAR_END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=90)
OWNERS = ["ann@vendor.example", "bo@vendor.example", "cy@vendor.example"]
SEGMENTS = {"smb": 0, "mid_market": 25_000, "enterprise": 100_000}


@dataclass
class Change:
    account: str
    at: datetime
    before: float
    after: float


@dataclass
class History:
    accounts: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)

    def subscription(self, account: str, at: datetime, before: float, after: float, reason: str) -> None:
        self.changes.append(Change(account, at, before, after))
        self.events.append(
            {
                "id": f"{account}-sub-{at:%Y%m%d}",
                "type": "subscription_changed",
                "account_id": account,
                "timestamp": at.isoformat(),
                "arr_before": before,
                "arr_after": after,
                "reason": reason,
            }
        )

    def usage(self, account: str, at: datetime, share: float) -> None:
        event = {"id": f"{account}-u-{at:%Y%m%d}", "type": "usage", "account_id": account, "timestamp": at.isoformat()}
        self.events.append({**event, "metric": "api_calls", "quantity": round(LIMIT * share)})


def generate(partitions: int, seed: int = 8) -> History:
    """300 accounts paying since 2024 plus 20 new logos in 2025. Hot accounts run at 90 %+ of their limit for
    two months; most of those upgrade 10-60 days after the first crossing, some never do; quiet accounts stay
    near 40 %, a few upgrade anyway (the base rate), downgrade or churn."""
    rng = random.Random(seed)
    history = History()

    def declare(account: str, arr: float, index: int) -> None:
        history.accounts.append(
            {
                "type": "account",
                "account_id": account,
                "name": account.title(),
                "domains": f"{account}.example",
                "plan": "growth",
                "limits.api_calls": LIMIT,
                "arr": arr,
                "owners.csm": OWNERS[index % len(OWNERS)],
            }
        )

    def month_usage(account: str, month: int, shares: tuple[float, float], until: datetime | None = None) -> None:
        for day, share in zip((3, 17), shares, strict=True):
            at = datetime(2025, month, day, 9, tzinfo=UTC)
            if until is None or at < until:
                history.usage(account, at, share)

    for index in range(300):
        account = f"acct-{index:03d}"
        kind = index % 10
        arr = float(rng.choice([12_000, 30_000, 60_000, 150_000]))
        declare(account, arr, index)
        history.subscription(account, datetime(2024, rng.randint(1, 12), 10, 12, tzinfo=UTC), 0, arr, "new")
        hot_from = rng.randint(2, 8) if kind in (0, 1, 2, 3, 4) else None
        end_of_usage = None
        if kind in (0, 1, 2):  # hot, then upgrade within 10-60 days of the first crossing (day 17, 09:00)
            upgrade_at = datetime(2025, hot_from, 17, 12, tzinfo=UTC) + timedelta(days=rng.randint(10, 60))
            history.subscription(account, upgrade_at, arr, arr * 1.5, "upgrade")
        elif kind == 5:  # quiet, upgrades anyway
            history.subscription(account, datetime(2025, rng.randint(2, 11), 12, 12, tzinfo=UTC), arr, arr + 6_000, "upgrade")
        elif kind == 6:
            history.subscription(account, datetime(2025, rng.randint(2, 11), 14, 12, tzinfo=UTC), arr, arr * 0.7, "downgrade")
        elif kind == 7:
            end_of_usage = datetime(2025, rng.randint(3, 11), 8, 12, tzinfo=UTC)
            history.subscription(account, end_of_usage, arr, 0, "churn")
        for month in range(1, 13):
            hot = hot_from is not None and hot_from <= month <= hot_from + 1
            shares = (0.45, rng.uniform(0.46, 0.52)) if hot else (rng.uniform(0.15, 0.2), rng.uniform(0.15, 0.2))
            month_usage(account, month, shares, end_of_usage)
    for index in range(20):  # new logos; the even ones upgrade in October
        account = f"new-{index:02d}"
        arr = float(rng.choice([12_000, 30_000]))
        declare(account, arr, index)
        start_month = rng.randint(3, 6)
        history.subscription(account, datetime(2025, start_month, 10, 12, tzinfo=UTC), 0, arr, "new")
        if index % 2 == 0:
            history.subscription(account, datetime(2025, 10, 15, 12, tzinfo=UTC), arr, arr + 3_000, "upgrade")
        for month in range(start_month + 1, 13):
            month_usage(account, month, (0.2, 0.2))
    # one marker account per partition, last in the file: once scoring has its signal and its subscription
    # change, everything before it on that partition went through signals and scoring
    candidates = (f"marker-{n}" for n in range(1000))
    by_partition: dict[int, str] = {}
    while len(by_partition) < partitions:
        name = next(candidates)
        by_partition.setdefault(partition_of(name, partitions), name)
    for index, marker in enumerate(by_partition.values()):
        declare(marker, 1_000, index)
        history.markers.append(marker)
    history.events.sort(key=lambda e: e["timestamp"])
    for marker in history.markers:
        history.usage(marker, datetime(2026, 3, 5, 9, tzinfo=UTC), 0.96)
        history.subscription(marker, datetime(2026, 3, 6, 12, tzinfo=UTC), 0, 1_000, "new")
    return history


# ----------------------------------------------------------------------------- the expected figures, worked here


def expected_revenue(changes: list[Change], accounts: set[str] | None = None) -> dict[str, float]:
    changes = sorted((c for c in changes if accounts is None or c.account in accounts), key=lambda c: c.at)
    opening: dict[str, float] = {}
    for c in changes:
        if c.at < YEAR_START:
            opening[c.account] = c.after
    cohort = {a for a, v in opening.items() if v > 0}
    starting = sum(opening[a] for a in cohort)
    expansion = contraction = churn = new = new_logo_expansion = 0.0
    expanded: set[str] = set()
    first_purchase: dict[str, datetime] = {}
    first_expansion: dict[str, datetime] = {}
    for c in changes:
        if c.before == 0 and c.after > 0:
            first_purchase.setdefault(c.account, c.at)
        elif 0 < c.before < c.after:
            first_expansion.setdefault(c.account, c.at)
        if not YEAR_START <= c.at < YEAR_END:
            continue
        delta = c.after - c.before
        if c.account not in cohort:
            if c.before == 0:
                new += delta
            elif delta > 0:
                new_logo_expansion += delta
        elif delta > 0:
            expansion += delta
            expanded.add(c.account)
        elif c.after == 0:
            churn += c.before
        elif delta < 0:
            contraction -= delta
    firsts = [(first_expansion[a] - first_purchase[a]).days for a in first_expansion if YEAR_START <= first_expansion[a] < YEAR_END]
    return {
        "starting_arr": starting,
        "accounts_at_start": len(cohort),
        "expansion": expansion,
        "contraction": contraction,
        "churn": churn,
        "new": new,
        "nrr": (starting + expansion - contraction - churn) / starting,
        "grr": (starting - churn - contraction) / starting,
        "expansion_revenue_share": (expansion + new_logo_expansion) / (new + expansion + new_logo_expansion),
        "expansion_rate": len(expanded) / len(cohort),
        "expansion_revenue_per_customer": expansion / len(cohort),
        "time_to_first_expansion_days": sum(firsts) / len(firsts),
    }


def upgrades(changes: list[Change]) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    for c in changes:
        if 0 < c.before < c.after:
            found[c.account].append(c.at)
    return found


def expected_pipeline(alerts: list[tuple[str, str, str, datetime]], changes: list[Change]) -> dict[str, float | int | None]:
    """Walk each account's timeline in event time: an expansion alert opens an opportunity when none is open,
    an upgrade wins the open one (amount = the ARR delta), a churn loses it."""
    timeline: dict[str, list[tuple[datetime, int, object]]] = defaultdict(list)
    for account, _, _, at in alerts:
        timeline[account].append((at, 1, None))
    for c in changes:
        timeline[c.account].append((c.at, 0, c))
    opportunities = []
    for items in timeline.values():
        current = None
        for at, is_alert, change in sorted(items, key=lambda item: (item[0], item[1])):
            if is_alert:
                if current is None:
                    current = {"identified": at, "outcome": "open"}
                    opportunities.append(current)
            elif current is not None and 0 < change.before < change.after:
                current.update(outcome="won", closed=change.at, amount=change.after - change.before)
                current = None
            elif current is not None and change.after == 0 < change.before:
                current.update(outcome="lost", closed=change.at)
                current = None
    in_year = [o for o in opportunities if YEAR_START <= o["identified"] < YEAR_END]
    won = [o for o in in_year if o["outcome"] == "won"]
    return {
        "opportunities_identified": len(in_year),
        "opportunities_won": len(won),
        "opportunities_lost": sum(1 for o in in_year if o["outcome"] == "lost"),
        "win_rate": len(won) / len(in_year),
        "average_deal_size": sum(o["amount"] for o in won) / len(won),
        "average_cycle_days": sum((o["closed"] - o["identified"]).total_seconds() / 86400 for o in won) / len(won),
    }


def expected_signals(alerts: list[tuple[str, str, str, datetime]], changes: list[Change]) -> dict[tuple[str, str], tuple]:
    """(signal type, tier) -> (alerted, expanded, precision, base rate, lift); '*' aggregates."""
    population: set[str] = set()
    last: dict[str, float] = {}
    for c in sorted(changes, key=lambda c: c.at):
        if c.at < YEAR_START:
            last[c.account] = c.after
        elif c.at < YEAR_END and c.after > 0:
            population.add(c.account)
    population |= {a for a, v in last.items() if v > 0}
    in_year = [a for a in alerts if YEAR_START <= a[3] < YEAR_END]
    population |= {a[0] for a in in_year}
    ups = upgrades(changes)
    alerted = {a[0] for a in in_year}
    never = population - alerted
    base = sum(1 for a in never if any(YEAR_START <= t < YEAR_END for t in ups.get(a, []))) / len(never)
    first: dict[tuple[str, str], dict[str, datetime]] = defaultdict(dict)
    for account, signal_type, tier, at in in_year:
        for key in ((signal_type, tier), (signal_type, "*"), ("*", tier), ("*", "*")):
            if account not in first[key] or at < first[key][account]:
                first[key][account] = at
    result = {}
    for key, accounts in first.items():
        hits = sum(1 for a, at in accounts.items() if any(at <= t <= at + WINDOW for t in ups.get(a, [])))
        precision = hits / len(accounts)
        result[key] = (len(accounts), hits, precision, base, precision / base if base else None)
    return result


# ----------------------------------------------------------------------------- the test


def _write(history: History, folder: Path) -> tuple[Path, Path]:
    accounts = folder / "accounts.csv"
    columns = ["type", "account_id", "name", "domains", "plan", "limits.api_calls", "arr", "owners.csm"]
    with accounts.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(history.accounts)
    events = folder / "events.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in history.events))
    return accounts, events


def _cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def approx(value: float | None) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


async def test_a_replayed_year_is_measured_as_worked_out_independently(
    stack_factory, database_url, service_factory, api_key_factory, slack_factory, tmp_path
) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    for name in ("scoring", "signals", "ingest"):
        service_factory(name, stack)
    history = generate(stack.settings.radar_partitions)
    accounts_file, events_file = _write(history, tmp_path)
    env = {**stack.env, "RADAR_API_KEY": key}

    # the accounts first (CSV), and their limits known to the signals worker before the events
    loaded = _cli("replay", str(accounts_file), "--url", stack.url("ingest"), env=env, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert f"{len(history.accounts)} account(s)" in loaded.stderr
    async with httpx.AsyncClient(timeout=10) as client:

        async def limits_known() -> bool:
            for account in history.accounts:
                state = await client.get(stack.url("signals", f"/v1/state/{account['account_id']}"))
                if state.status_code != 200 or state.json().get("limits") != {"api_calls": LIMIT}:
                    return False
            return True

        await await_for(limits_known, 90, "the signals worker to know every account's limits", interval=0.5)

    replayed = _cli("replay", str(events_file), "--url", stack.url("ingest"), "--batch-size", "400", env=env, cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert f"{len(history.events)} event(s) accepted, 0 duplicate(s)" in replayed.stderr

    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    try:
        marker_changes = {f"{m}-sub-20260306" for m in history.markers}

        async def markers_through() -> bool:
            async with sessions() as session:
                signalled = set(
                    (await session.scalars(select(SignalRecord.account_id).where(SignalRecord.account_id.in_(history.markers)))).all()
                )
                booked = set(
                    (await session.scalars(select(RevenueChange.event_id).where(RevenueChange.event_id.in_(marker_changes)))).all()
                )
            return signalled == set(history.markers) and booked == marker_changes

        await await_for(markers_through, 180, "every partition's marker through signals and scoring", interval=0.5)
        async with sessions() as session:
            payloads = (await session.scalars(select(AlertRecord.payload))).all()
            booked = len((await session.scalars(select(RevenueChange.event_id))).all())
    finally:
        await engine.dispose()
    assert booked == len(history.changes)  # every subscription change is in the ledger exactly once
    alerts = [
        (p["account_id"], p["signal"]["type"], p["tier"], datetime.fromisoformat(p["signal"]["event_timestamp"]))
        for p in payloads
        if p["kind"] == "expansion"
    ]
    # the hot accounts (and only they) run past 80 %: the pipeline raised expansion alerts for them
    hot = {f"acct-{i:03d}" for i in range(300) if i % 10 < 5}
    assert {a[0] for a in alerts if a[3] < YEAR_END} <= hot
    assert len({a[0] for a in alerts if a[3] < YEAR_END}) > len(hot) // 2

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url("scoring"), headers=headers, timeout=60) as client:
        revenue = (await client.get("/v1/metrics/revenue", params={"period": "2025", "group_by": "segment"})).json()
        signals = (await client.get("/v1/metrics/signals", params={"period": "2025"})).json()

        # ---- revenue: the ledger formulas, and the pipeline the alerts opened and the upgrades closed
        expected = {**expected_revenue(history.changes), **expected_pipeline(alerts, history.changes)}
        assert {k: revenue["metrics"][k] for k in expected} == {k: approx(v) for k, v in expected.items()}
        assert revenue["metrics"]["nrr"] > 1  # the hot accounts' upgrades outweigh churn and downgrades
        declared = {a["account_id"]: a["arr"] for a in history.accounts}
        for segment in ("smb", "enterprise"):
            floor = SEGMENTS[segment]
            ceiling = min([v for v in SEGMENTS.values() if v > floor], default=float("inf"))
            members = {a for a, arr in declared.items() if floor <= arr < ceiling}
            worked = expected_revenue(history.changes, members)
            assert revenue["groups"][segment]["nrr"] == approx(worked["nrr"])
            assert revenue["groups"][segment]["grr"] == approx(worked["grr"])

        # ---- precision and lift per signal type and tier
        worked_signals = expected_signals(alerts, history.changes)
        measured = {
            (row["signal_type"], row["tier"]): (row["alerted"], row["expanded"], row["precision"], row["base_rate"], row["lift"])
            for row in signals["signals"]
        }
        assert measured.keys() == worked_signals.keys()
        for key_, (alerted, hits, precision, base, lift) in worked_signals.items():
            assert measured[key_] == (alerted, hits, approx(precision), approx(base), approx(lift)), key_
        overall = measured[("*", "*")]
        assert overall[4] > 2  # alerted accounts expand several times as often as the never-alerted ones
        assert signals["window_days"] == 90

        # ---- the same through `radar report`: a readable table and a CSV
        report = _cli("report", "--period", "2025", "--csv", str(tmp_path / "report.csv"), env=env, cwd=tmp_path)
        assert report.returncode == 0, report.stderr
        assert "Expansion outcomes — 2025" in report.stdout and "NRR" in report.stdout and "usage_threshold_crossed" in report.stdout
        with (tmp_path / "report.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        figures = {(r["section"], r["group"], r["signal_type"], r["tier"], r["metric"]): r["value"] for r in rows}
        assert float(figures[("revenue", "all", "", "", "nrr")]) == approx(expected["nrr"])
        assert float(figures[("revenue", "all", "", "", "win_rate")]) == approx(expected["win_rate"])
        assert float(figures[("signals", "all", "*", "*", "lift")]) == approx(overall[4])

        # ---- stage changes through the API
        page = (await client.get("/v1/opportunities", params={"stage": "open", "limit": 500})).json()
        open_in_year = [o for o in page["items"] if datetime.fromisoformat(o["identified_at"]) < YEAR_END]
        assert page["total"] == len(page["items"])  # the rest opened on the markers' 2026 alerts
        assert len(open_in_year) == expected["opportunities_identified"] - expected["opportunities_won"] - expected["opportunities_lost"]
        won = (await client.get("/v1/opportunities", params={"stage": "won", "limit": 1})).json()["items"][0]
        assert won["closed_by_event"] and won["amount"] > 0
        target = open_in_year[0]["opportunity_id"]
        moved = await client.post(f"/v1/opportunities/{target}/stage", json={"stage": "qualified"})
        assert (moved.status_code, moved.json()["stage"]) == (200, "qualified")
        lost_without_reason = await client.post(f"/v1/opportunities/{target}/stage", json={"stage": "lost"})
        assert lost_without_reason.status_code == 422 and "reason" in lost_without_reason.text
        closed = await client.post(f"/v1/opportunities/{target}/stage", json={"stage": "won", "amount": 7_500})
        assert (closed.json()["stage"], closed.json()["amount"]) == ("won", 7_500)
        again = await client.post(f"/v1/opportunities/{target}/stage", json={"stage": "lost", "reason": "late"})
        assert again.status_code == 409 and "already won" in again.json()["detail"]
        detail = (await client.get(f"/v1/opportunities/{target}")).json()
        assert [h["to_stage"] for h in detail["history"]] == ["identified", "qualified", "won"]
        assert (await client.get("/v1/metrics/revenue", params={"period": "2025-13"})).status_code == 400

    # ---- the owner's expansion summary, sent to Slack on demand (scoring also sends it weekly)
    slack = slack_factory()
    sent = _cli(
        "report",
        "--period",
        "2025",
        "--csv",
        str(tmp_path / "again.csv"),
        "--slack",
        env={**env, "SLACK_WEBHOOK_URL": slack.url},
        cwd=tmp_path,
    )
    assert sent.returncode == 0, sent.stderr
    (message,) = slack.wait_for_messages(1, timeout=30)
    assert "*Expansion summary*" in message["text"]
    assert f"Active opportunities: *{page['total'] - 1}*" in message["text"]  # one was just won
    assert "NRR trend: 2026-Q1 " in message["text"] and "usage_threshold_crossed" in message["text"]


async def test_the_notifiers_actions_move_the_accounts_opportunity(database_url) -> None:
    """done qualifies the open opportunity, a dismissal loses it with its reason (the shared database)."""
    from services.scoring.adapters.transactions import units_of_work
    from services.scoring.outcomes.adapters.repository import OutcomesRepository
    from services.scoring.outcomes.handlers import apply_alert_action, on_subscription_changed
    from shared.schemas import Alert, SubscriptionChangedEvent

    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    outcomes = units_of_work(sessions, OutcomesRepository)
    at = "2026-10-01T09:00:00Z"
    signal = {
        "signal_id": "s1",
        "type": "new_domain_user",
        "account_id": "acme",
        "event_id": "e1",
        "event_timestamp": at,
        "emitted_at": at,
    }
    alert = Alert.model_validate(
        {
            "alert_id": "alert:s1",
            "account_id": "acme",
            "account_name": "Acme",
            "signal": signal,
            "score": 81,
            "tier": "immediate",
            "drivers": [],
            "created_at": at,
        }
    )
    try:
        async with sessions.begin() as session:
            opened = await OutcomesRepository(session).record_alert(alert)
            assert opened is not None and opened.stage == "identified"
        assert await apply_alert_action(outcomes, "acme", "done", None, "dana") == "qualified"
        assert await apply_alert_action(outcomes, "acme", "done", None, "dana") is None  # already past identified
        assert await apply_alert_action(outcomes, "acme", "dismissed", "no budget", "dana") == "lost"
        async with sessions() as session:
            row = await OutcomesRepository(session).opportunity("opp:alert:s1")
            assert (row.stage, row.reason) == ("lost", "alert dismissed: no budget")
        # an upgrade after the loss wins nothing and is still booked once
        upgrade = SubscriptionChangedEvent.model_validate(
            {
                "id": "sub1",
                "type": "subscription_changed",
                "account_id": "acme",
                "timestamp": "2026-10-20T12:00:00Z",
                "arr_before": 10,
                "arr_after": 20,
                "reason": "upgrade",
            }
        )
        assert await on_subscription_changed(outcomes, upgrade) is True
        assert await on_subscription_changed(outcomes, upgrade) is False
        async with sessions() as session:
            assert (await OutcomesRepository(session).opportunity("opp:alert:s1")).stage == "lost"
    finally:
        await engine.dispose()


async def test_a_redelivered_alert_action_leaves_the_accounts_newer_opportunity_alone(database_url) -> None:
    """Kafka may deliver an alert action again after scoring restarts; the account may have opened a newer
    opportunity by then, which only a new action may move."""
    from services.scoring.adapters.transactions import units_of_work
    from services.scoring.outcomes.adapters.repository import OutcomesRepository
    from services.scoring.outcomes.handlers import apply_alert_action
    from shared.schemas import Alert

    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    outcomes = units_of_work(sessions, OutcomesRepository)

    def alert(number: int, at: str) -> Alert:
        signal = {"signal_id": f"s{number}", "type": "new_domain_user", "account_id": "initech", "event_id": f"e{number}"}
        return Alert.model_validate(
            {
                "alert_id": f"alert:s{number}",
                "account_id": "initech",
                "account_name": "Initech",
                "signal": {**signal, "event_timestamp": at, "emitted_at": at},
                "score": 81,
                "tier": "immediate",
                "drivers": [],
                "created_at": at,
            }
        )

    try:
        async with sessions.begin() as session:
            assert await OutcomesRepository(session).record_alert(alert(1, "2026-10-01T09:00:00Z")) is not None
        assert await apply_alert_action(outcomes, "initech", "dismissed", "no budget", "dana", action_id="click-1") == "lost"
        async with sessions.begin() as session:
            newer = await OutcomesRepository(session).record_alert(alert(2, "2026-11-01T09:00:00Z"))
            assert newer is not None and newer.stage == "identified"
        assert await apply_alert_action(outcomes, "initech", "dismissed", "no budget", "dana", action_id="click-1") is None
        async with sessions() as session:
            assert (await OutcomesRepository(session).opportunity(newer.opportunity_id)).stage == "identified"
        assert await apply_alert_action(outcomes, "initech", "done", None, "dana", action_id="click-2") == "qualified"
    finally:
        await engine.dispose()


async def test_an_upgrade_replayed_ahead_of_the_alert_still_wins_its_opportunity(database_url) -> None:
    """Replays deliver subscription changes to scoring before the signals pipeline's alerts for earlier events."""
    from services.scoring.adapters.transactions import units_of_work
    from services.scoring.outcomes.adapters.repository import OutcomesRepository
    from services.scoring.outcomes.handlers import on_subscription_changed
    from shared.schemas import Alert, SubscriptionChangedEvent

    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    outcomes = units_of_work(sessions, OutcomesRepository)

    def alert(n: int, at: str) -> Alert:
        signal = {
            "signal_id": f"s{n}",
            "type": "usage_threshold_crossed",
            "account_id": "acme",
            "event_id": f"e{n}",
            "event_timestamp": at,
            "emitted_at": at,
        }
        return Alert.model_validate(
            {
                "alert_id": f"alert:s{n}",
                "account_id": "acme",
                "account_name": "Acme",
                "signal": signal,
                "score": 70,
                "tier": "short_term",
                "drivers": [],
                "created_at": at,
            }
        )

    try:
        upgrade = {"type": "subscription_changed", "account_id": "acme", "arr_before": 10_000, "arr_after": 14_000, "reason": "upgrade"}
        await on_subscription_changed(
            outcomes, SubscriptionChangedEvent.model_validate({**upgrade, "id": "up1", "timestamp": "2025-03-01T12:00:00Z"})
        )
        async with sessions.begin() as session:
            first = await OutcomesRepository(session).record_alert(alert(1, "2025-02-01T09:00:00Z"))
        async with sessions.begin() as session:
            joined = await OutcomesRepository(session).record_alert(alert(2, "2025-02-20T09:00:00Z"))  # before the upgrade: same deal
        async with sessions.begin() as session:
            later = await OutcomesRepository(session).record_alert(alert(3, "2025-04-01T09:00:00Z"))  # after it: a new one
        assert (first.stage, first.amount, first.closed_by_event) == ("won", 4_000, "up1")
        assert joined.opportunity_id == first.opportunity_id
        async with sessions() as session:
            assert (await OutcomesRepository(session).opportunity(first.opportunity_id)).alert_count == 2
        assert later.opportunity_id != first.opportunity_id and later.stage == "identified"

        # the other way round: an alert after the upgrade joined the open deal before the upgrade arrived
        async with sessions.begin() as session:
            await OutcomesRepository(session).record_alert(alert(4, "2025-06-01T09:00:00Z"))  # joins `later`
        await on_subscription_changed(
            outcomes, SubscriptionChangedEvent.model_validate({**upgrade, "id": "up2", "timestamp": "2025-05-01T12:00:00Z"})
        )
        async with sessions() as session:
            repository = OutcomesRepository(session)
            closed = await repository.opportunity(later.opportunity_id)
            successor = await repository.opportunity("opp:alert:s4")
        assert (closed.stage, closed.closed_by_event, closed.alert_count) == ("won", "up2", 1)
        assert (successor.stage, successor.alert_count, successor.identified_at.isoformat()) == (
            "identified",
            1,
            "2025-06-01T09:00:00+00:00",
        )
    finally:
        await engine.dispose()
