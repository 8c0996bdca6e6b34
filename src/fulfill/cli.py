"""The one command-line entry point: ``fulfill``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlmodel import Session, select

from fulfill.auth import ApiKey, Scope, create_key, hash_key
from fulfill.config import Settings, get_settings
from fulfill.db import engine_for

cli = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
keys_cli = typer.Typer(no_args_is_help=True, help="Manage API keys.")
cli.add_typer(keys_cli, name="keys")
console = Console(stderr=True)

DEV_KEY_FILE = "dev-api-key"


def main() -> None:
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
    name: Annotated[str | None, typer.Option(help="the storefront or party the key is for")] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    settings = get_settings()
    with Session(engine_for(settings.resolved_database_url)) as session:
        key = create_key(session, scope, name)
        session.commit()
    console.print(f"created a key with scopes {', '.join(s.value for s in scope)}")
    print(key)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    loglevel: str = "INFO",
) -> None:
    """Run a Celery worker (it takes both queues: default and planning)."""
    from fulfill.worker import DEFAULT_QUEUE, PLANNING_QUEUE, app

    queues = f"{DEFAULT_QUEUE},{PLANNING_QUEUE}"
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "-Q", queues]
    if get_settings().is_embedded_broker:
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    app.worker_main(argv)


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
    children = _Supervisor(
        {
            "worker": [sys.executable, "-m", "fulfill", "worker", f"--concurrency={workers}"],
            "beat": [sys.executable, "-m", "fulfill", "beat"],
        }
    )
    children.start()
    console.print(f"[bold]fulfill[/] on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    console.print(
        f"database {settings.resolved_database_url}, broker {settings.resolved_broker_url}"
    )
    console.print(f"development API key (admin): [bold]{key}[/]")
    try:
        uvicorn.run("fulfill.app:create_app", factory=True, host=host, port=port)
    finally:
        children.stop()


@cli.command()
def demo(
    url: Annotated[str, typer.Option(help="a running service (fulfill serve)")] = (
        "http://127.0.0.1:8000"
    ),
    key: Annotated[str | None, typer.Option(help="an admin key; default: the dev key")] = None,
    orders: Annotated[int, typer.Option(min=1)] = 200,
    skus: Annotated[int, typer.Option(min=1)] = 300,
    seed: int = 1,
) -> None:
    """Seed a sample shop and place orders through the API of a running service."""
    import random

    import httpx
    from rich.table import Table

    from fulfill.demo import place_orders, seed_shop

    settings = get_settings()
    key = key or (Path(settings.data_dir) / DEV_KEY_FILE).read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=60) as client:
        try:
            seed_shop(client, headers, skus, rng)
        except httpx.HTTPError as exc:
            console.print(f"[red]cannot seed {url}: {exc}[/] (is `fulfill serve` running?)")
            raise typer.Exit(1) from None
        result = place_orders(client, headers, orders, skus, rng)
    table = Table(title=f"{orders} orders through {url}")
    for column in ("node", "service level", "orders"):
        table.add_column(column)
    for (node, level), count in sorted(result.placed.items()):
        table.add_row(node, level, str(count))
    for reason, count in sorted(result.refused.items()):
        table.add_row("refused", reason, str(count))
    console.print(table)
    latencies = sorted(result.latencies_ms)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    console.print(f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")


class _Supervisor:
    """Keeps child processes running; restarts one that dies, stops all on exit."""

    def __init__(self, commands: dict[str, list[str]]) -> None:
        self.commands = commands
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name)
        threading.Thread(target=self._watch, daemon=True, name="supervisor").start()

    def stop(self) -> None:
        self._stopping.set()
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def _spawn(self, name: str) -> None:
        self.processes[name] = subprocess.Popen(
            self.commands[name],
            env=os.environ.copy(),
            preexec_fn=_die_with_parent,  # noqa: PLW1509  # one async-signal-safe call
        )

    def _watch(self) -> None:
        while not self._stopping.wait(2.0):
            for name, process in list(self.processes.items()):
                if process.poll() is not None and not self._stopping.is_set():
                    console.print(f"[yellow]{name} exited ({process.returncode}); restarting[/]")
                    time.sleep(1.0)
                    self._spawn(name)


def _parent_death_signal() -> Callable[[], None] | None:
    """A function for the child, between fork and exec, asking Linux to terminate it when its
    parent dies, however that happens: uvicorn re-raises SIGTERM after shutting down, so
    ``serve`` cannot count on its own cleanup. Resolved here, in the parent, so that the child
    makes one C call and takes no lock."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


_die_with_parent = _parent_death_signal()


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
