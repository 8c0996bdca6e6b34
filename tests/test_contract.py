"""The OpenAPI document holds the service to its word: schemathesis, with every check on, over
every operation of a live server seeded with real data (the paths' ids are real ones), a bounded
number of examples each. Any 5xx, or an answer the document does not describe, fails the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.auth import Scope
from fulfill.notify.models import Case, Notice
from fulfill.orders.models import Order
from fulfill.processes import LiveServer
from fulfill.tracking.models import Shipment
from tests.dispatch.support import van1_published
from tests.notify.test_notices import follow, place
from tests.support import relay_now

Headers = dict[str, str]
EXAMPLES = int(os.environ.get("FULFILL_CONTRACT_EXAMPLES", "12"))
# Statuses a valid request may get for reasons the schema cannot express (an unknown sku, a
# cutoff passed, a plan already published, a rate limit): the service's own refusals.
REFUSALS = [401, 403, 404, 409, 422, 429]


def seed(
    client: TestClient, app: FastAPI, engine: Engine, make_key: Any, settings: Any
) -> dict[str, Any]:
    """A shop's day so far: catalog, a van's published plan, a parcel followed, a case, notices.
    Returns the real values of the paths' parameters."""
    admin = make_key(Scope.ADMIN, name="ops")
    shop = make_key(Scope.STOREFRONT, name="shop")
    dispatcher = make_key(Scope.DISPATCHER, name="desk")
    plan = van1_published(client, admin, shop, dispatcher, engine, settings, app, 3)
    order_id = place(client, shop, "web-contract", channels=["email"])
    follow(engine, order_id)
    relay_now(engine, settings)
    with Session(engine) as session:
        order = session.get(Order, order_id)
        assert order is not None
        token = order.tracking_token
    reported = client.post(f"/t/{token}/problems", json={"kind": "damaged", "message": "Dented"})
    assert reported.status_code == 201, reported.text
    with Session(engine) as session:
        shipment = session.exec(select(Shipment)).first()
        case = session.exec(select(Case)).first()
        notice = session.exec(select(Notice)).first()
        assert shipment and case and notice
    return {
        "key": admin["Authorization"].removeprefix("Bearer "),
        "path.order_id": order_id,
        "path.shipment_id": shipment.id,
        "path.case_id": case.id,
        "path.notice_id": notice.id,
        "path.token": token,
        "path.code": "WH1",
        "path.wave_id": plan["wave"],
        "path.plan_id": plan["id"],
        "path.van": "VAN1",
        "path.carrier": "sandbox",
    }


def config(values: dict[str, Any], report: Path) -> str:
    """Real ids most of the time (the rest generated, so that unknown ones are tried too)."""
    real = {k: v for k, v in values.items() if k != "key"}
    dictionaries = "\n".join(
        f'[dictionaries."{k}"]\nvalues = [{json.dumps(v)}]' for k, v in real.items()
    )
    parameters = "\n".join(f'"{k}" = {{ dictionary = "{k}", probability = 0.8 }}' for k in real)
    return f"""
{dictionaries}

[parameters]
{parameters}

[checks.positive_data_acceptance]
expected-statuses = {json.dumps([200, 201, 202, 303, *REFUSALS])}

[reports.json]
enabled = true
path = "{report}"
"""


def test_every_operation_keeps_to_the_document(
    seeded: TestClient,
    app: FastAPI,
    engine: Engine,
    make_key: Any,
    dispatch_settings: Any,
    tmp_path: Path,
    db_url: str,
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("once is enough: on PostgreSQL, the stricter of the two")
    values = seed(seeded, app, engine, make_key, dispatch_settings)
    toml = tmp_path / "schemathesis.toml"
    report = tmp_path / "contract.json"
    toml.write_text(config(values, report))
    with LiveServer(app) as server:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(toml),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "17",
                "--header",
                f"Authorization: Bearer {values['key']}",
                "--workers",
                "1",
                "--no-color",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    print(run.stdout[-6000:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
