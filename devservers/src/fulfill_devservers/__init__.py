"""Throwaway PostgreSQL and Redis servers on 127.0.0.1, for tests and benchmarks: a dev tool,
not part of the shipped service.

Each server gets a watchdog process that stops it when the process that started it exits,
however it exits, so no server outlives its owner.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fulfill.processes import free_port, wait_for_port

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
        wait_for_port(port)
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
