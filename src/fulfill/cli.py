"""The one command-line entry point: ``fulfill``."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlmodel import Session, col, select

from fulfill.auth import ApiKey, Scope, create_key, hash_key, revoke_key
from fulfill.config import Settings, get_settings
from fulfill.db import engine_for, utcnow
from fulfill.processes import Supervisor
from fulfill.wiring import wire

cli = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
keys_cli = typer.Typer(no_args_is_help=True, help="Manage API keys.")
cli.add_typer(keys_cli, name="keys")
console = Console(stderr=True)

DEV_KEY_FILE = "dev-api-key"


def main() -> None:
    wire()
    cli()


@cli.command()
def migrate(revision: str = "head") -> None:
    """Bring the database schema up to REVISION (default: the newest)."""
    from fulfill.migrations import upgrade

    settings = get_settings()
    _prepare_data_dir(settings)
    upgrade(settings.resolved_database_url, revision)
    console.print(f"database at revision {revision}")


@keys_cli.command("create")
def keys_create(
    scope: Annotated[list[Scope], typer.Option("--scope", help="repeat for several scopes")],
    storefront: Annotated[
        str | None,
        typer.Option(help="the shop whose orders the key holds (needed with --scope storefront)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="a label: whom or what the key is for")] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    settings = get_settings()
    with Session(engine_for(settings.resolved_database_url)) as session:
        try:
            key = create_key(session, scope, name, storefront=storefront)
        except ValueError as exc:
            _fail(str(exc))
        session.commit()
    owner = f" for storefront {storefront}" if storefront else ""
    console.print(f"created a key with scopes {', '.join(s.value for s in scope)}{owner}")
    print(key)


@keys_cli.command("list")
def keys_list() -> None:
    """The keys: id, prefix, label, storefront, scopes, created and revoked (never the key)."""
    from rich.table import Table

    table = Table("id", "prefix", "name", "storefront", "scopes", "created", "revoked")
    with Session(engine_for(get_settings().resolved_database_url)) as session:
        for row in session.exec(select(ApiKey).order_by(col(ApiKey.id))):
            table.add_row(
                str(row.id),
                row.prefix,
                row.name,
                row.storefront or "",
                ",".join(row.scopes),
                f"{row.created_at:%Y-%m-%d %H:%M}",
                f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
            )
    Console(width=160).print(table)


@keys_cli.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="the key's id or prefix, as `keys list` shows")],
) -> None:
    """Revoke a key: every API process refuses it from its next request on."""
    with Session(engine_for(get_settings().resolved_database_url)) as session:
        try:
            row = revoke_key(session, key, utcnow())
        except ValueError as exc:
            _fail(str(exc))
        said = f"revoked key {row.id} ({row.prefix}, {row.name})"
        session.commit()
    console.print(said)


def _fail(message: str) -> NoReturn:
    console.print(f"error: {message}", markup=False)
    raise typer.Exit(2)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker (it takes both queues: default and planning)."""
    from fulfill.worker import DEFAULT_QUEUE, PLANNING_QUEUE, ShutdownWatch, app

    queues = f"{DEFAULT_QUEUE},{PLANNING_QUEUE}"
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "-Q", queues]
    if get_settings().is_embedded_broker:
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    watch = ShutdownWatch()
    try:
        app.worker_main(argv)
        celery_status: object = 0
    except SystemExit as ended:
        celery_status = ended.code
    except Exception as fell:  # Celery's shutdown path can raise past it (seen: a lost connection)
        celery_status = f"{type(fell).__name__}: {fell}"
    status = watch.exit_status(celery_status)
    if status and not watch.requested:
        console.print(
            f"error: the worker stopped without being asked to (Celery's status: {celery_status})",
            markup=False,
        )
    raise typer.Exit(status)


@cli.command()
def beat(loglevel: str = "INFO") -> None:
    """Run the Celery beat scheduler (run exactly one)."""
    from fulfill.worker import app

    app.start(["beat", f"--loglevel={loglevel}"])


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="Celery worker processes")] = 2,
) -> None:
    """Run the embedded default: the API, a Celery worker and beat, on the local data dir."""
    import uvicorn

    from fulfill.migrations import upgrade

    settings = get_settings()
    _prepare_data_dir(settings)
    upgrade(settings.resolved_database_url)
    key = _development_key(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    children = Supervisor(
        {
            "worker": [sys.executable, "-m", "fulfill", "worker", f"--concurrency={workers}"],
            "beat": [sys.executable, "-m", "fulfill", "beat"],
        },
        env={"PYTHONUNBUFFERED": "1"},  # their logs as they happen
        log_dir=logs,
    )
    children.start()
    # X-Forwarded-For is believed only from FULFILL_TRUSTED_PROXIES (fulfill.client_address).
    server = uvicorn.Server(
        uvicorn.Config(
            "fulfill.app:create_app", factory=True, host=host, port=port, proxy_headers=False
        )
    )

    def banner() -> None:  # last, once the server's own start-up lines are out
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            console.print(
                f"database {settings.resolved_database_url}, broker {settings.resolved_broker_url}"
            )
            console.print(f"worker and beat log to {logs}/")
            console.print(
                f"[bold]fulfill[/] on http://{host}:{port}  (docs: http://{host}:{port}/docs)"
            )
            console.print(f"development API key (admin): [bold]{key}[/]")

    threading.Thread(target=banner, daemon=True, name="banner").start()
    try:
        server.run()
    finally:
        children.stop()


@cli.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, help="orders placed over the day")] = 3000,
    seed: Annotated[int, typer.Option(help="the same seed gives the same day")] = 1,
    speed: Annotated[
        str, typer.Option(help="simulated seconds per real second, or max (as fast as it goes)")
    ] = "max",
    city: Annotated[str, typer.Option(help="edmonton or montreal")] = "edmonton",
    out: Annotated[Path, typer.Option(help="where report.html, report.json, the plots go")] = Path(
        "demo-report"
    ),
    day: Annotated[str | None, typer.Option(help="the day, YYYY-MM-DD; default: tomorrow")] = None,
) -> None:
    """Run a day of a shop on the embedded stack at accelerated time, then write its report."""
    from datetime import date, timedelta

    from rich.progress import Progress

    from fulfill.demo import report
    from fulfill.demo.city import CITIES
    from fulfill.demo.day import Day
    from fulfill.demo.stack import Stack

    if city not in CITIES:
        console.print(f"[red]unknown city {city!r}[/]: choose one of {', '.join(CITIES)}")
        raise typer.Exit(2)
    pace = _speed(speed)
    when = date.fromisoformat(day) if day else date.today() + timedelta(days=1)
    place = CITIES[city]
    with Stack(out, datetime.combine(when, datetime.min.time(), UTC), seed) as stack:
        console.print(
            f"fulfill on {stack.url}: dispatch {stack.url}/dispatch "
            f"(dispatcher key in {stack.data_dir / 'keys.txt'})"
        )
        the_day = Day(stack, place, when, orders, seed, pace)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("the day", total=orders)

            def show(now: datetime, tally: Any) -> None:
                local = now.astimezone(the_day.zone).strftime("%H:%M")
                placed, refused = sum(tally.placed.values()), sum(tally.refused.values())
                seen = "  ".join(f"{k} {v}" for k, v in tally.seen.items())
                words = f"{local}  placed {placed}  refused {refused}  {seen}"
                progress.update(task, completed=tally.orders, description=words)

            tally = the_day.run(show)
        since, until = the_day.local(0), the_day.local(24)
        about = {"city": place.name, "day": when.isoformat(), "seed": seed}
        figures = report.build(the_day.engine, tally, since, until, about, stack.data_dir / "mail")
        page = report.write(the_day.engine, figures, out)
    console.print(f"report: {page}")
    print(
        json.dumps(
            {k: figures[k] for k in ("orders", "deliveries", "promises", "cost", "vans")},
            default=str,
        )
    )


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        console.print(f"[red]--speed {text!r}[/]: give a positive number or max")
        raise typer.Exit(2)
    return value


def _prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)


def _development_key(settings: Settings) -> str:
    """The admin key of this data dir, created on first start and kept beside the database."""
    path = Path(settings.data_dir) / DEV_KEY_FILE
    with Session(engine_for(settings.resolved_database_url)) as session:
        if path.exists():
            key = path.read_text().strip()
            if session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first():
                return key
        key = create_key(session, [Scope.ADMIN], name="dev")
        session.commit()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
