"""The shop's own event webhook (``FULFILL_EVENTS_WEBHOOK_URL``), signed with
``FULFILL_EVENTS_WEBHOOK_SECRET``: receivers deduplicate by the ``id`` each event carries."""

from __future__ import annotations

import json

import httpx

from fulfill.config import Settings
from fulfill.outbox.models import OutboxEvent
from fulfill.outbox.service import Handler
from fulfill_carriers import SIGNATURE_HEADER, sign

WEBHOOK_TOPICS = ("order.created", "order.cancelled")


class DeliveryFailed(RuntimeError):
    pass


def webhook_body(row: OutboxEvent) -> bytes:
    envelope = {
        "id": f"evt_{row.id}",
        "type": row.topic,
        "created_at": row.created_at.isoformat(),
        "data": row.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def webhook_handler(url: str, secret: str, timeout_s: float = 10.0) -> Handler:
    def deliver(row: OutboxEvent) -> None:
        body = webhook_body(row)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, secret),
            "Fulfill-Event-Id": f"evt_{row.id}",
        }
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
        if response.status_code >= 300:
            raise DeliveryFailed(f"{url} answered {response.status_code}")

    return deliver


def shop_webhook_handlers(settings: Settings) -> dict[str, list[Handler]]:
    """The topics the shop's webhook hears, if it has one."""
    if not settings.events_webhook_url:
        return {}
    deliver = webhook_handler(settings.events_webhook_url, settings.events_webhook_secret or "")
    return {topic: [deliver] for topic in WEBHOOK_TOPICS}
