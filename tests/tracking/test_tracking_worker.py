"""Webhooks through the real path: the API keeps the delivery and sends the task to Redis, a
real worker process applies it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from fulfill.app import create_app
from fulfill.auth import Scope, create_key
from fulfill.config import Settings
from fulfill.db import utcnow
from fulfill.orders.models import Fulfillment
from fulfill.tracking import following
from fulfill.tracking.models import Shipment, WebhookReceipt
from fulfill_carriers import sign
from fulfill_carriers.sandbox.adapter import SIGNATURE_HEADER
from tests.support import MORNING, PATIENCE_S, order_body, seed_catalog
from tests.test_worker import fulfill_process

SECRET = "whsec_carrier"


def test_a_worker_on_redis_applies_webhooks_moments_after_they_are_kept(
    db_url: str, redis_url: str, tmp_path: Path, engine: Engine
) -> None:
    nobody = "http://127.0.0.1:9"  # webhooks need the carrier's secret, not the carrier
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        broker_url=redis_url,
        carrier_url=nobody,
        carrier_webhook_secret=SECRET,
    )
    app = create_app(settings)
    app.state.clock = lambda: MORNING
    with Session(engine) as session:
        admin = {"Authorization": f"Bearer {create_key(session, [Scope.ADMIN])}"}
        session.commit()
    with TestClient(app) as client:
        seed_catalog(client, admin)
        order = client.post(
            "/v1/orders", json=order_body(service_level="standard"), headers=admin
        ).json()
        with Session(engine) as session:
            fulfillment = session.get(Fulfillment, order["fulfillments"][0]["id"])
            assert fulfillment is not None
            following.follow(session, fulfillment, "sandbox", "SBX0000000001", utcnow())
            session.commit()
        env = {
            "FULFILL_DATA_DIR": str(tmp_path),
            "FULFILL_DATABASE_URL": db_url,
            "FULFILL_BROKER_URL": redis_url,
            "FULFILL_CARRIER_URL": nobody,
            "FULFILL_CARRIER_WEBHOOK_SECRET": SECRET,
        }
        with fulfill_process(["worker", "--concurrency=1"], env, tmp_path / "worker.log"):
            at = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
            for k, code in enumerate(("CR", "PU", "AF")):
                event = {"id": f"e{k}", "tracking_number": "SBX0000000001", "code": code, "at": at}
                body = json.dumps({"events": [event]}).encode()
                response = client.post(
                    "/v1/carriers/sandbox/webhooks",
                    content=body,
                    headers={SIGNATURE_HEADER: sign(body, SECRET)},
                )
                assert response.status_code == 202, response.text
            deadline = time.monotonic() + PATIENCE_S
            while True:
                with Session(engine) as session:
                    pending = session.exec(
                        select(WebhookReceipt).where(WebhookReceipt.processed_at == None)  # noqa: E711
                    ).all()
                    shipment = session.exec(select(Shipment)).one()
                if not pending:
                    break
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
                time.sleep(0.1)
    assert shipment.status == "in_transit"
