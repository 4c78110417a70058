"""`radar`: run the services, bring the whole stack up locally, manage keys, database and topics."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from services.config import RadarConfig, load_config
from shared.config import ConfigError
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.auth import KeyStore

T = TypeVar("T")

app = typer.Typer(help="Expansion Radar: real-time expansion signals for SaaS companies.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for the HTTP services (only their hashes are stored).", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
dlq_app = typer.Typer(help="Notifications that failed every attempt (the notifications-dlq topic).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console(stderr=True, soft_wrap=True)


class Service(StrEnum):
    ingest = "ingest"
    signals = "signals"
    scoring = "scoring"
    notifier = "notifier"


def _config(settings: Settings) -> RadarConfig:
    """Bad configuration stops the command with the offending key named."""
    try:
        return load_config(settings.radar_config)
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(service: Service) -> None:
    """Run one service in the foreground (what `radar up` supervises, and what a container runs)."""
    from shared.kafka import ensure_topics
    from shared.observability import configure_logging

    settings = get_settings()
    config = _config(settings)
    configure_logging(service.value, settings)
    asyncio.run(ensure_topics(settings))
    if service is Service.signals:
        import faust

        from services.signals.bootstrap import create_app as create_signals_app
        from services.signals.entrypoints.faust_app import tune_garbage_collector

        tune_garbage_collector()
        worker = faust.Worker(
            create_signals_app(settings, config),
            loglevel=settings.radar_log_level.lower(),
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,
        )
        worker.spinner = None  # its terminal escapes would break the one-JSON-object-per-line log on SIGTERM
        worker.execute_from_commandline()
        return

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve_http(service, settings, config))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): its transports and scheduling cost the HTTP services
    a fraction of the stdlib loop's CPU per request; the stdlib loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve_http(service: Service, settings: Settings, config: RadarConfig) -> None:
    """Built inside the running loop: aiokafka clients must be created within one."""
    import uvicorn

    if service is Service.ingest:
        from services.ingest import bootstrap as ingest_bootstrap
        from services.ingest.entrypoints import http as ingest_http

        web_app, port = ingest_http.create_app(ingest_bootstrap.build(settings, config)), settings.radar_ingest_port
    elif service is Service.scoring:
        from services.scoring import bootstrap as scoring_bootstrap
        from services.scoring.entrypoints import http as scoring_http

        web_app, port = scoring_http.create_app(scoring_bootstrap.build(settings, config)), settings.radar_scoring_port
    else:
        from services.notifier import bootstrap as notifier_bootstrap
        from services.notifier.entrypoints import http as notifier_http

        web_app, port = notifier_http.create_app(notifier_bootstrap.build(settings, config)), settings.radar_notifier_port
    server = uvicorn.Server(
        uvicorn.Config(
            web_app, host=settings.radar_host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=15, lifespan="on"
        )
    )
    await server.serve()
    if getattr(server, "started", False) is False:
        raise SystemExit(1)


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="also stream a built-in sample customer base")] = False,
) -> None:
    """Start everything on this machine: broker, database, the four services. Ctrl-C stops it all."""
    from services.supervisor import run_stack

    settings = get_settings()
    _config(settings)
    sys.exit(asyncio.run(run_stack(settings, demo=demo, console=console)))


@app.command()
def demo(
    url: Annotated[str, typer.Option(help="ingest base URL")] = "http://127.0.0.1:8080",
    key: Annotated[str, typer.Option(envvar="RADAR_API_KEY", help="API key with events and accounts scopes")] = "",
    seconds: Annotated[float, typer.Option(help="how long to stream; 0 = until Ctrl-C")] = 0,
) -> None:
    """Stream the built-in sample customer base to a running ingest."""
    from services.demo import stream_demo

    if not key:
        console.print("[red]an API key is needed:[/red] pass --key or set RADAR_API_KEY (radar keys create demo)")
        raise typer.Exit(2)
    asyncio.run(stream_demo(url, key, seconds or None))


@app.command()
def broker(port: Annotated[int, typer.Option(help="port to listen on (0 = a free one)")] = 9092) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) in the foreground."""
    import signal
    import threading

    from shared.embedded_broker import EmbeddedBroker

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with EmbeddedBroker(port=port or None) as running:
        console.print(f"broker listening on [bold]{running.bootstrap}[/bold]; Ctrl-C stops it")
        try:
            done.wait()
        except KeyboardInterrupt:
            pass


@app.command()
def score(
    all_accounts: Annotated[bool, typer.Option("--all", help="rescore every stored account with the current config")] = False,
) -> None:
    """Rescore the whole base after a change to the scoring config (no alerts are raised)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from services.scoring.entrypoints.rescore import count_scores, rescore_all
    from shared.db import create_engine, sessionmaker

    if not all_accounts:
        console.print("[red]say what to rescore:[/red] radar score --all")
        raise typer.Exit(2)
    settings = get_settings()
    config = _config(settings)

    async def run() -> tuple[int, int]:
        engine = create_engine(settings.database_url)
        sessions = sessionmaker(engine)
        try:
            with Progress(TextColumn("rescoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task("rescoring", total=await count_scores(sessions))
                return await rescore_all(sessions, config.scoring, lambda done: bar.update(task, completed=done))
        finally:
            await engine.dispose()

    done, changed = asyncio.run(run())
    console.print(f"rescored {done} account(s) with the {config.scoring.model} model; {changed} changed score or tier")


async def _with_keystore(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    from shared.auth import KeyStore
    from shared.db import create_engine, sessionmaker

    engine = create_engine(get_settings().database_url)
    try:
        return await action(KeyStore(sessionmaker(engine)))
    finally:
        await engine.dispose()


@keys_app.command("create")
def keys_create(
    name: str,
    scope: Annotated[list[str], typer.Option(help="events, accounts, read (repeatable); default all")] = [],  # noqa: B006
    rate_limit: Annotated[int, typer.Option(min=0, help="requests a minute the key may make, across all processes; 0 = unlimited")] = 0,
) -> None:
    """Create a key and print it once; only its hash is kept."""
    from shared.auth import ALL_SCOPES

    unknown = sorted(set(scope) - set(ALL_SCOPES))
    if unknown:
        console.print(f"[red]unknown scope(s):[/red] {', '.join(unknown)}; choose from {', '.join(ALL_SCOPES)}")
        raise typer.Exit(2)
    created = asyncio.run(_with_keystore(lambda keys: keys.create(name, scope or None, rate_limit or None)))
    print(created.plaintext)
    console.print(f"key '{name}' created ({created.display_prefix}…); store it now, it cannot be shown again")


@keys_app.command("list")
def keys_list() -> None:
    rows = asyncio.run(_with_keystore(lambda keys: keys.list()))
    table = Table("name", "prefix", "scopes", "rate limit", "created", "revoked")
    for row in rows:
        table.add_row(
            row.name,
            row.key_prefix,
            ",".join(row.scopes),
            f"{row.rate_limit_per_minute}/min" if row.rate_limit_per_minute else "",
            row.created_at.isoformat(timespec="seconds"),
            row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "",
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name_or_prefix: str) -> None:
    count = asyncio.run(_with_keystore(lambda keys: keys.revoke(name_or_prefix)))
    if not count:
        console.print(f"[red]no active key named or prefixed {name_or_prefix!r}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {count} key(s)")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest."""
    from shared.db import upgrade_database

    upgrade_database(get_settings().database_url)
    console.print("database is at the newest schema")


@topics_app.command("create")
def topics_create() -> None:
    """Create the project's topics (same partition count for all: they are co-partitioned by account)."""
    from shared.kafka import ensure_topics

    asyncio.run(ensure_topics(get_settings()))
    console.print("topics are in place")


@dlq_app.command("list")
def dlq_list() -> None:
    """Show every dead letter: alert, channel, attempts and the last error."""
    from services.notifier.entrypoints.dlq import read_dead_letters

    letters = asyncio.run(read_dead_letters(get_settings()))
    table = Table("offset", "alert", "channel", "attempts", "failed at", "error")
    for letter in letters:
        table.add_row(
            letter.get("offset", ""),
            letter.get("alert_id", ""),
            letter.get("channel", ""),
            str(letter.get("attempts", "")),
            str(letter.get("failed_at", "")),
            str(letter.get("error", ""))[:120],
        )
    Console(width=200).print(table)
    console.print(f"{len(letters)} dead letter(s)")


@dlq_app.command("replay")
def dlq_replay(
    alert_id: Annotated[list[str], typer.Option("--alert-id", help="replay only these alerts (repeatable); default all")] = [],  # noqa: B006
) -> None:
    """Send dead letters again: each delivery becomes pending with fresh attempts; delivered ones are left alone."""
    from services.notifier.entrypoints.dlq import read_dead_letters, replay

    settings = get_settings()
    letters = asyncio.run(read_dead_letters(settings))
    if alert_id:
        letters = [letter for letter in letters if letter.get("alert_id") in set(alert_id)]
    revived = asyncio.run(replay(settings, letters))
    console.print(f"{revived} delivery(ies) queued again from {len(letters)} dead letter(s)")


class ReportGroup(StrEnum):
    segment = "segment"
    owner = "owner"


@app.command()
def report(
    period: Annotated[str, typer.Option(help="2026 (a year), 2026-Q3 (a quarter) or 2026-11 (a month)")],
    csv_path: Annotated[Path | None, typer.Option("--csv", help="CSV file to write (default radar-report-PERIOD.csv)")] = None,
    segment: Annotated[str | None, typer.Option(help="only accounts of this segment (outcomes.segments)")] = None,
    owner: Annotated[str | None, typer.Option(help="only accounts this owner (CSM, else AE) holds")] = None,
    by: Annotated[ReportGroup | None, typer.Option(help="also one column per segment or owner")] = None,
    slack: Annotated[bool, typer.Option(help="also send the weekly expansion summary to Slack now")] = False,
) -> None:
    """NRR, GRR, expansion revenue, win rate, cycle, time to first expansion and per-signal precision and lift."""
    from services.scoring.outcomes.domain.periods import PeriodError, parse_period
    from services.scoring.outcomes.entrypoints import report as outcomes_report
    from services.scoring.outcomes.reports import RevenueReport, Scope, SignalReport
    from shared.db import create_engine, sessionmaker

    try:
        chosen = parse_period(period)
    except PeriodError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    settings = get_settings()
    config = _config(settings)
    scope = Scope(segment, owner, by.value if by else None)

    async def run() -> tuple[RevenueReport, SignalReport, str | None]:
        engine = create_engine(settings.database_url)
        try:
            return await outcomes_report.run(sessionmaker(engine), chosen, config.outcomes, scope, summary=slack)
        finally:
            await engine.dispose()

    revenue, signals, summary = asyncio.run(run())
    outcomes_report.render(Console(width=160), revenue, signals)
    target = csv_path or Path(f"radar-report-{chosen.label}.csv")
    rows = outcomes_report.write_csv(target, revenue, signals)
    console.print(f"wrote {rows} row(s) to {target}")
    if summary is not None:
        from services.scoring.outcomes.adapters.slack import post_summary

        channel = settings.radar_slack_webhooks.get(config.notifier.slack.default_channel) or settings.slack_webhook_url
        asyncio.run(post_summary(summary, channel.get_secret_value() if channel else None))


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="NDJSON or CSV export: events, and account/plan records (type account|plan)")],
    url: Annotated[str, typer.Option(help="ingest base URL")] = "http://127.0.0.1:8080",
    key: Annotated[str, typer.Option(envvar="RADAR_API_KEY", help="API key with the events and accounts scopes")] = "",
    file_format: Annotated[str | None, typer.Option("--format", help="ndjson or csv (default: from the file suffix)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="events per POST /v1/events")] = 500,
    sort: Annotated[bool, typer.Option(help="send events in timestamp order (reads the file into memory)")] = False,
) -> None:
    """Load a historical export through a running ingest, so the past year is scored and measured."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from services.replay import ReplayError, count_records
    from services.replay import replay as run_replay

    if not key:
        console.print("[red]an API key is needed:[/red] pass --key or set RADAR_API_KEY (radar keys create replay)")
        raise typer.Exit(2)
    if not file.is_file():
        console.print(f"[red]{file}: no such file[/red]")
        raise typer.Exit(2)
    try:
        total = count_records(file, file_format)
        with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("replaying", total=total)
            result = asyncio.run(
                run_replay(
                    file,
                    url,
                    key,
                    file_format=file_format,
                    batch_size=batch_size,
                    sort=sort,
                    progress=lambda done: bar.update(task, completed=done),
                )
            )
    except ReplayError as exc:
        console.print(f"[red]replay stopped:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"replayed {total} record(s): {result.accounts} account(s), {result.plans} plan(s), "
        f"{result.accepted} event(s) accepted, {result.duplicates} duplicate(s), {result.retries} retried request(s)"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
