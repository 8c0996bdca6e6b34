"""A carrier is a plugin: a package installed beside the service, found through the
``fulfill.carriers`` entry point group, is configured by its code and used for parcels,
tracking, webhooks and the customer's words, with no change to the service."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.tracking import carriers, ingest, polling
from fulfill.tracking.models import Shipment
from fulfill_carriers import Nature, PluginError, TrackingStatus, installed, label
from tests.support import order_body, relay_now, seed_catalog

PACKAGE = Path(__file__).parents[1] / "plugins" / "tiny_carrier"
Headers = dict[str, str]


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The tiny carrier package, built and installed into a directory on the path (as pip
    would install it into site-packages), offline."""
    uv = shutil.which("uv")
    assert uv, "the test suite runs under uv (README), which installs the plugin"
    target = tmp_path / "site"
    offline = ("--quiet", "--offline", "--no-deps", "--no-build-isolation")
    where = ("--python", sys.executable, "--target", str(target))
    subprocess.run([uv, "pip", "install", *offline, *where, str(PACKAGE)], check=True)
    monkeypatch.syspath_prepend(str(target))
    installed.cache_clear()
    yield importlib.import_module("tiny_carrier")
    installed.cache_clear()
    sys.modules.pop("tiny_carrier", None)


def test_an_installed_carrier_package_is_used_with_no_change_to_the_service(
    tiny: Any,
    client: TestClient,
    admin: Headers,
    shop: Headers,
    app: FastAPI,
    engine: Engine,
    settings: Settings,
) -> None:
    assert installed()["tiny"].nature is Nature.CARRIER and label("tiny") == "Tiny Express"
    tiny_settings = settings.model_copy(
        update={"carriers": {"tiny": {"secret": "s3cret"}}, "parcel_carrier": "tiny"}
    )
    app.state.settings = tiny_settings
    seed_catalog(client, admin)
    placed = client.post("/v1/orders", json=order_body(service_level="standard"), headers=shop)
    assert placed.status_code == 201, placed.text
    relay_now(engine, tiny_settings)  # the outbox asks the parcel carrier, now Tiny Express
    with Session(engine) as session:
        shipment = session.exec(select(Shipment)).one()
    assert shipment.carrier == "tiny" and shipment.tracking_number in tiny.SHIPMENTS

    scan = {"id": "e-1", "number": shipment.tracking_number, "status": "picked_up"}
    hook = {"delivery": "d-1", "events": [{**scan, "at": utcnow().isoformat()}]}
    url = "/v1/carriers/tiny/webhooks"
    body = json.dumps(hook).encode()
    assert client.post(url, content=body, headers={"tiny-secret": "wrong"}).status_code == 401
    accepted = client.post(url, content=body, headers={"tiny-secret": "s3cret"})
    assert accepted.status_code == 202, accepted.text
    applied = ingest.apply_pending(engine)
    assert applied is not None and applied.stored == 1

    configured = carriers.configured(tiny_settings)
    try:
        report = polling.poll_due(engine, configured, tiny_settings, utcnow())
    finally:
        carriers.close(configured)
    assert report.events == 1
    order = client.get(f"/v1/orders/{placed.json()['id']}", headers=shop).json()
    [seen] = order["shipments"]
    assert (seen["carrier"], seen["status"]) == ("tiny", TrackingStatus.DELIVERED)
    assert [e["code"] for e in seen["timeline"]] == ["picked_up", "DONE"]


def test_a_carrier_nobody_installed_or_configured_wrongly_is_refused_by_name(
    settings: Settings, tiny: Any
) -> None:
    with pytest.raises(ValueError, match="no carrier plugin 'fedup' is installed"):
        Settings.model_validate({**settings.model_dump(), "carriers": {"fedup": {}}})
    unset = settings.model_copy(update={"carriers": {"tiny": {}}})
    with pytest.raises(PluginError, match="carrier tiny: option 'secret'"):
        carriers.configured(unset)
