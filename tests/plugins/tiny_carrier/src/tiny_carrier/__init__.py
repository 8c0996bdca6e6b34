"""Tiny Express, a carrier that lives in memory: it ships at once and delivers on the first
look, and signs its webhooks with a shared secret. Everything it uses is the public face of
``fulfill_carriers``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from fulfill_carriers import (
    CarrierEvent,
    CreatedShipment,
    Nature,
    Parcel,
    PluginError,
    Tracked,
    TrackingStatus,
    Webhook,
    WebhookRefused,
)

# What the carrier holds, shared by every adapter made in this process: number -> reference.
SHIPMENTS: dict[str, str] = {}
CANCELLED: set[str] = set()
SECRET_HEADER = "tiny-secret"


class TinyCarrier:
    code: ClassVar[str] = "tiny"
    label: ClassVar[str] = "Tiny Express"
    nature: ClassVar[Nature] = Nature.CARRIER
    batch_size = 10

    def __init__(self, secret: str) -> None:
        self.secret = secret

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        secret = options.get("secret")
        if not isinstance(secret, str) or not secret:
            raise PluginError("carrier tiny: option 'secret' must be given as text")
        return cls(secret)

    def create_shipment(self, parcel: Parcel) -> CreatedShipment:
        number = f"TINY-{parcel.reference}"
        SHIPMENTS[number] = parcel.reference
        return CreatedShipment(number)

    def track(self, tracking_numbers: Sequence[str]) -> list[Tracked]:
        return [self._tracked(number) for number in tracking_numbers]

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Webhook:
        if headers.get(SECRET_HEADER) != self.secret:
            raise WebhookRefused("wrong or missing tiny-secret", 401)
        try:
            payload = json.loads(body)
            events = tuple(
                CarrierEvent(
                    str(e["number"]),
                    TrackingStatus(e["status"]),
                    str(e["status"]),
                    datetime.fromisoformat(e["at"]),
                    event_id=str(e["id"]),
                )
                for e in payload["events"]
            )
            return Webhook(f"tiny:{payload['delivery']}", events)
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRefused(f"not a tiny webhook: {exc}", 400) from exc

    def cancel(self, tracking_number: str) -> None:
        CANCELLED.add(tracking_number)

    def close(self) -> None:
        pass

    def _tracked(self, number: str) -> Tracked:
        if number not in SHIPMENTS:
            return Tracked(number, known=False)
        delivered = CarrierEvent(
            number,
            TrackingStatus.DELIVERED,
            "DONE",
            datetime.now(UTC),
            "Delivered by Tiny Express",
            event_id=f"{number}-done",
        )
        return Tracked(number, (delivered,))
