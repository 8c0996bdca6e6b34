"""The embedded stack of a demo day: the API, a worker and beat as processes on a fresh data
directory (SQLite, the embedded broker), and the sandbox carrier, Amazon MCF and SMS provider
in this process; all on one simulated clock (``fulfill.simclock``)."""

from __future__ import annotations

import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from fulfill import simclock
from fulfill.auth import Scope, create_key
from fulfill.db import engine_for
from fulfill.migrations import upgrade
from fulfill.processes import LiveServer, Supervisor, free_port, wait_for_http
from fulfill_carriers.sandboxes import (
    CarrierState,
    McfSandboxState,
    SmsState,
    carrier_sandbox_app,
    mcf_sandbox_app,
    sms_sandbox_app,
)

WEBHOOK_SECRET = "whsec_demo"
MARKETPLACE = "A2EUQ1WTGCTBG2"
# Leases are measured on the shared clock, which a stepped day moves a minute at a time however
# long the work takes: a five-minute lease would run out under a mail still being sent, and the
# mail would go twice. No process dies in the demo, so a lease longer than any job will do.
LEASE_S = 6 * 3600


@dataclass(frozen=True)
class Keys:
    admin: str
    shop: str
    vans: str
    dispatcher: str
    support: str


class Stack:
    def __init__(self, out: Path, start: datetime, seed: int, workers: int = 2) -> None:
        self.data_dir = (out / "state").resolve()
        self.start, self.seed, self.workers = start, seed, workers
        self.port = free_port()
        self.carrier = CarrierState(seed=seed, webhook_secret=WEBHOOK_SECRET)
        self.mcf = McfSandboxState(step_s=60.0)
        self.sms = SmsState()
        self._exit = ExitStack()
        self.clock: simclock.SharedClock
        self.keys: Keys
        self.children: Supervisor

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'fulfill.db'}"

    def __enter__(self) -> Stack:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        self.clock = simclock.SharedClock(self.data_dir / "clock")
        self.clock.set(self.start, 0.0)
        self._exit.callback(self.clock.close)
        self.carrier.clock = self.clock.now
        self.carrier.webhook_url = f"{self.url}/v1/carriers/sandbox/webhooks"
        carrier = self._exit.enter_context(LiveServer(carrier_sandbox_app(self.carrier)))
        mcf = self._exit.enter_context(LiveServer(mcf_sandbox_app(self.mcf)))
        sms = self._exit.enter_context(LiveServer(sms_sandbox_app(self.sms)))
        upgrade(self.database_url)
        self.keys = self._make_keys()
        env = {
            "FULFILL_DATA_DIR": str(self.data_dir),
            simclock.ENV: str(self.data_dir / "clock"),
            "FULFILL_PUBLIC_URL": self.url,
            "FULFILL_SHOP_NAME": "Demo Shop",
            "FULFILL_CARRIER_URL": carrier.url,
            "FULFILL_CARRIER_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "FULFILL_MCF_URL": mcf.url,
            "FULFILL_MCF_MARKETPLACE_ID": MARKETPLACE,
            "FULFILL_MCF_SYNC_S": "5",
            "FULFILL_SMS_URL": sms.url,
            "FULFILL_DISPATCH_SWEEP_S": "1",
            "FULFILL_OUTBOX_SWEEP_S": "1",
            "FULFILL_DISPATCH_TIME_LIMIT_S": "3",
            "FULFILL_DISPATCH_POLISH_S": "1",
            "FULFILL_TRACKING_PAGE_RATE": "600/minute",
            "FULFILL_OUTBOX_LEASE_S": str(LEASE_S),
            "FULFILL_DISPATCH_PLANNING_LEASE_S": str(LEASE_S),
        }
        python = [sys.executable, "-m", "fulfill"]
        self.children = Supervisor(
            {
                "api": [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "fulfill.app:create_app",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "--no-proxy-headers",
                ],
                "worker": [
                    *python,
                    "worker",
                    f"--concurrency={self.workers}",
                    "--loglevel=WARNING",
                ],
                "beat": [*python, "beat", "--loglevel=WARNING"],
            },
            env=env,
            log_dir=self.data_dir,
        )
        self.children.start()
        self._exit.callback(self.children.stop)
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _make_keys(self) -> Keys:
        with Session(engine_for(self.database_url)) as session:
            made = {
                name: create_key(
                    session,
                    [scope],
                    name=name,
                    storefront="demo-shop" if scope == Scope.STOREFRONT else None,
                )
                for name, scope in (
                    ("admin", Scope.ADMIN),
                    ("shop", Scope.STOREFRONT),
                    ("vans", Scope.CARRIER),
                    ("dispatcher", Scope.DISPATCHER),
                    ("support", Scope.SUPPORT),
                )
            }
            session.commit()
        (self.data_dir / "keys.txt").write_text("".join(f"{k} {v}\n" for k, v in made.items()))
        return Keys(**made)

    def _wait_ready(self) -> None:
        try:
            wait_for_http(f"{self.url}/readyz")
        except TimeoutError as exc:
            raise RuntimeError(f"the API did not start; see {self.data_dir / 'api.log'}") from exc
