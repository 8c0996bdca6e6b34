"""Processes the service runs beside itself: free ports, waiting for a server to answer, a
server in a thread (``LiveServer``) and child processes that stop with their parent
(``Supervisor``), for ``fulfill serve`` and the demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float = 60.0) -> None:
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
