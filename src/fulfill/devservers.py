"""Throwaway PostgreSQL and Redis servers on 127.0.0.1, for tests, benchmarks and demos.

Each server gets a watchdog process that stops it when the process that started it exits,
however it exits, so no server outlives its owner.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

_WATCHDOG = """
import os, subprocess, sys, time
parent, command = int(sys.argv[1]), sys.argv[2:]
while True:
    try:
        os.kill(parent, 0)
    except OSError:
        break
    time.sleep(1)
subprocess.run(command, check=False)
"""


class ServerUnavailable(RuntimeError):
    """The server's binaries are not installed here."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextmanager
def temporary_postgres(base_dir: Path) -> Iterator[str]:
    """A PostgreSQL cluster in ``base_dir``; yields a SQLAlchemy URL for its superuser."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise ServerUnavailable("PostgreSQL (initdb, pg_ctl) is not installed")
    data, sockets = base_dir / "pgdata", base_dir / "pgsock"
    sockets.mkdir(parents=True, exist_ok=True)
    as_user = _unprivileged_prefix(base_dir)
    port = free_port()
    subprocess.run(
        [
            *as_user,
            initdb,
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    start = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(base_dir / "pg.log")]
    subprocess.run([*start, "-w", "start"], check=True, capture_output=True)
    stop = [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"]
    _watch(stop)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(stop, check=False, capture_output=True)


@contextmanager
def temporary_redis(base_dir: Path, port: int | None = None) -> Iterator[str]:
    """A Redis server with no persistence; yields its URL. A ``port`` lets a test bring
    a stopped server back where its clients look for it."""
    binary = shutil.which("redis-server")
    if not binary:
        raise ServerUnavailable("redis-server is not installed")
    base_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(base_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=real_clock_env(),
    )
    _watch(["kill", "-9", str(process.pid)])
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def real_clock_env() -> dict[str, str]:
    """The environment without the year-ahead run's libfaketime (`.ci/year-ahead`), for the
    programs that hang under it and whose clock never reaches the service: Redis (expiries are
    relative) and Chromium (the pages show the times the server sends)."""
    return {name: value for name, value in os.environ.items() if name != "LD_PRELOAD"}


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server and return its URL."""
    import psycopg

    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _unprivileged_prefix(base_dir: Path) -> list[str]:
    """initdb refuses to run as root: run the cluster as the postgres user then."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if not runuser:
        raise ServerUnavailable("running as root without runuser to drop privileges")
    subprocess.run(["chown", "-R", "postgres:postgres", str(base_dir)], check=True)
    for parent in [base_dir, *base_dir.parents]:
        if parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o011)  # let postgres traverse to its dir
    return [runuser, "-u", "postgres", "--"]


def _watch(stop_command: list[str]) -> None:
    subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), *stop_command],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_for_http(url: str, timeout_s: float = 60.0) -> None:
    """Until ``url`` answers 200 (a health check of a server just started)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f} s")


class LiveServer:
    """An ASGI app behind a real uvicorn server in a thread on 127.0.0.1: tests of true
    concurrency, sandboxes in benches."""

    def __init__(self, app: Any) -> None:
        import uvicorn  # only where a server is served

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Supervisor:
    """Keeps child processes running; restarts one that dies, stops all on exit."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.commands = commands
        self.env = os.environ | (env or {})
        self.log_dir = log_dir  # each child's output in NAME.log there, else on ours
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
        output = (self.log_dir / f"{name}.log").open("ab") if self.log_dir else None
        self.processes[name] = subprocess.Popen(
            self.commands[name],
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  # one async-signal-safe call
        )

    def _watch(self) -> None:
        while not self._stopping.wait(2.0):
            for name, process in list(self.processes.items()):
                if process.poll() is not None and not self._stopping.is_set():
                    print(f"{name} exited ({process.returncode}); restarting", file=sys.stderr)
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
