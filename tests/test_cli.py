"""The CLI as an operator uses it: real processes, real files."""

from __future__ import annotations

import json
import mailbox
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from fulfill import simclock
from fulfill.auth import ApiKey
from fulfill.db import engine_for
from fulfill.notify.models import Notice
from fulfill.orders.models import Order
from fulfill.processes import free_port, wait_for_http
from fulfill.tracking.models import Shipment
from tests.support import PATIENCE_S, WebhookReceiver, order_body, seed_catalog


def fulfill(
    *args: str, env: dict[str, str], timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fulfill", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    return {"FULFILL_DATA_DIR": str(tmp_path / "data")}


def test_migrate_then_create_a_key_printed_alone_on_the_last_line(
    data_env: dict[str, str],
) -> None:
    assert fulfill("migrate", env=data_env).returncode == 0
    created = fulfill(
        "keys", "create", "--scope", "storefront", "--storefront", "shop", env=data_env
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"ffk_[A-Za-z0-9_-]{43}", key)


def test_keys_are_listed_without_their_secret_and_revoked_by_id_or_prefix(
    data_env: dict[str, str],
) -> None:
    assert fulfill("migrate", env=data_env).returncode == 0
    made = [
        fulfill("keys", "create", "--scope", "storefront", "--storefront", "tea-shop", env=data_env)
        for _ in range(2)
    ]
    keys = [m.stdout.strip().splitlines()[-1] for m in made]
    listed = fulfill("keys", "list", env=data_env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("tea-shop") >= 2
    assert not any(key in listed.stdout for key in keys)
    revoked = fulfill("keys", "revoke", keys[0][:10], env=data_env)
    assert revoked.returncode == 0, revoked.stderr
    again = fulfill("keys", "revoke", "999", env=data_env)
    assert again.returncode == 2
    assert again.stderr.strip() == "error: no keys match '999'; name one by its id"
    with Session(engine_for(f"sqlite:///{data_env['FULFILL_DATA_DIR']}/fulfill.db")) as session:
        rows = session.exec(select(ApiKey).order_by(col(ApiKey.id))).all()
    assert [(r.storefront, r.revoked_at is not None) for r in rows] == [
        ("tea-shop", True),
        ("tea-shop", False),
    ]


def test_a_storefront_key_without_its_storefront_is_a_one_line_error(
    data_env: dict[str, str],
) -> None:
    assert fulfill("migrate", env=data_env).returncode == 0
    result = fulfill("keys", "create", "--scope", "storefront", env=data_env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: a storefront key needs the storefront it belongs to (--storefront)"
    ]
    assert result.stdout == ""


def test_a_wrong_setting_is_a_one_line_error_naming_it(data_env: dict[str, str]) -> None:
    result = fulfill("migrate", env=data_env | {"FULFILL_CARRIERS": '{"fedup": {}}'})
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: FULFILL_CARRIERS: Value error, no carrier plugin 'fedup'")
    aggregator = fulfill("migrate", env=data_env | {"FULFILL_PARCEL_CARRIER": "aftership"})
    assert aggregator.returncode == 2
    assert "'aftership' is no installed parcel carrier" in aggregator.stderr
    unusable = {"FULFILL_CARRIER_URL": "http://127.0.0.1:9", "FULFILL_CARRIER_TIMEOUT_S": "0"}
    refused = fulfill("migrate", env=data_env | unusable)
    assert (refused.returncode, refused.stderr.strip().splitlines()) == (
        2,
        ["error: carrier sandbox: option 'timeout_s' must be above 0"],
    )


def test_a_bad_scope_is_a_one_line_error(data_env: dict[str, str]) -> None:
    result = fulfill("keys", "create", "--scope", "superuser", env=data_env)
    assert result.returncode != 0
    assert "superuser" in result.stderr
    assert result.stdout == ""


def test_serve_runs_the_embedded_default_end_to_end(tmp_path: Path) -> None:
    """The README's first command: API, worker and beat on SQLite and the embedded broker."""
    port = free_port()
    with WebhookReceiver() as receiver:
        env = {
            "FULFILL_DATA_DIR": str(tmp_path / "data"),
            "FULFILL_EVENTS_WEBHOOK_URL": receiver.url,
            "FULFILL_EVENTS_WEBHOOK_SECRET": "whsec",
        }
        with (tmp_path / "serve.log").open("wb") as log:
            serve = subprocess.Popen(
                [sys.executable, "-m", "fulfill", "serve", "--port", str(port)],
                env=os.environ | env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/healthz")
            key = (tmp_path / "data" / "dev-api-key").read_text().strip()
            said = (tmp_path / "serve.log").read_text()
            # The URL and the key come last, after the server's own start-up lines.
            assert said.index("Uvicorn running") < said.index(f"on {base}") < said.index(key)
            admin = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, timeout=30) as client:
                seed_catalog(client, admin)  # type: ignore[arg-type]
                body = order_body(service_level="standard")
                created = client.post("/v1/orders", json=body, headers=admin)
                assert created.status_code == 201, created.text
                receiver.wait_for(1)
                for n in range(2, 6):
                    more = order_body(f"web-{n}", service_level="standard")
                    assert client.post("/v1/orders", json=more, headers=admin).status_code == 201
            listed = httpx.get(f"{base}/v1/orders", params={"limit": 200}, headers=admin).json()
            assert len(listed["items"]) == 5
            receiver.wait_for(5)
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    assert serve.returncode is not None
    # The sweeps ran every few seconds; none of their routine lines reached the console or logs.
    logs = [tmp_path / "serve.log", *(tmp_path / "data" / "logs").glob("*.log")]
    assert len(logs) == 3
    for log in logs:
        assert not re.search(r"Sending due task|Task \S+ (received|succeeded)", log.read_text())


def test_serve_takes_its_worker_and_beat_down_with_it(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {"FULFILL_DATA_DIR": str(tmp_path / "data")}
    serve = subprocess.Popen(
        [sys.executable, "-m", "fulfill", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_http(f"http://127.0.0.1:{port}/healthz")
    children = _children_of(serve.pid)
    assert len(children) >= 2  # the worker and beat
    serve.kill()  # the harshest end: no cleanup code runs in serve
    serve.wait(timeout=30)
    deadline = time.monotonic() + PATIENCE_S
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)]


def _children_of(pid: int) -> list[int]:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(found) >= 2:
            return [int(c) for c in found]
        time.sleep(0.2)
    return []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_a_short_demo_day_reports_what_the_database_holds(tmp_path: Path) -> None:
    out = tmp_path / "day"
    day = fulfill(
        "demo",
        "--orders",
        "120",
        "--seed",
        "7",
        "--out",
        str(out),
        "--day",
        "2026-11-23",
        env={simclock.ENV: ""},
        timeout_s=600,
    )
    assert day.returncode == 0, day.stderr
    report = json.loads((out / "report.json").read_text())
    assert (out / "wave_map.png").stat().st_size > 1000
    engine = engine_for(f"sqlite:///{out / 'state' / 'fulfill.db'}")
    with Session(engine) as session:
        orders = session.exec(select(Order)).all()
        notices = session.exec(select(Notice)).all()
        delivered = session.exec(select(Shipment).where(Shipment.status == "delivered")).all()
    # Every order generated is placed (and in the database) or refused with a reason.
    placed = report["orders"]["placed"]
    assert (
        report["orders"]["generated"] == 120 == placed + sum(report["orders"]["refused"].values())
    )
    assert placed == len(orders) == sum(report["orders"]["by_level"].values())
    assert sum(report["orders"]["by_source"].values()) == placed
    # Same-day promises, each counted once: kept, early, or not kept for one cause.
    same_day = report["promises"]["same_day"]
    assert same_day["placed"] == sum(o.service_level == "same_day" for o in orders) > 0
    assert (
        same_day["kept"] + same_day["early"] + sum(same_day["late"].values()) == same_day["placed"]
    )
    assert same_day["late_from_injected_trouble"] + same_day["late_otherwise"] == sum(
        same_day["late"].values()
    )
    # Vans drove the published routes; parcels reached doors; customers heard of it once each.
    assert report["deliveries"]["delivered"] == len(delivered) > 0
    assert report["driver_events"]["delivered"] > 0 and report["vans"]["routes"] > 0
    # Once each at the customer's: the Maildir holds one mail per email notice sent.
    mails = [m["Message-ID"] for m in mailbox.Maildir(out / "state" / "mail", create=False)]
    emailed = [n for n in notices if n.channel == "email" and n.status == "sent"]
    assert report["notices"]["duplicate_mails"] == 0 and len(mails) == len(set(mails))
    assert len(mails) == len(emailed) > 0
    since, until = (datetime.fromisoformat(report["period"][k]) for k in ("since", "until"))
    assert report["notices"]["sent"] == sum(
        n.status == "sent" and since < n.created_at <= until for n in notices
    )
    # Every delivery that came after its window: its customer was told before the window ended.
    late = [s for s in delivered if s.promised_end and s.status_at > s.promised_end]
    sent_late = [n for n in notices if n.kind == "running_late" and n.sent_at]
    told = {n.order_id: n.sent_at for n in sorted(sent_late, key=lambda n: n.sent_at, reverse=True)}
    assert report["deliveries"]["late"] == len(late) > 0
    untold = [s.order_id for s in late if not s.promised_end >= told.get(s.order_id, s.status_at)]
    assert untold == []
    # And so was every customer whose parcel is late, delivered or not.
    told_in_time = report["deliveries"]["late_told"]
    assert told_in_time["told_before_window_end"] == told_in_time["late"] >= len(late)
    # The broken-down and the jammed van's stops went to other vans (the rescue).
    assert 0 < same_day["rescued_kept"] <= same_day["rescued"]
    trouble = {incident["what"] for incident in report["incidents"]}
    assert trouble >= {"carrier outage", "stock-out", "van breakdown", "traffic jam"}
    assert (out / "report.html").read_text().count("<img") == 5
