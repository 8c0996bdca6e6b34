"""The own fleet's adapter: it is never polled, receives no webhooks and creates nothing (the
dispatch plans the vans), but it names the fleet among the carriers like any other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from fulfill_carriers.adapter import CreatedShipment, Nature, Parcel, Tracked, Webhook
from fulfill_carriers.errors import NotSupported
from fulfill_carriers.own_fleet.mapping import CODE


class OwnFleet:
    """No options."""

    code: ClassVar[str] = CODE
    label: ClassVar[str] = "our own van"
    nature: ClassVar[Nature] = Nature.OWN_FLEET
    batch_size = 0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls()

    def create_shipment(self, parcel: Parcel) -> CreatedShipment:
        raise NotSupported("the own fleet's parcels are planned by dispatch")

    def track(self, tracking_numbers: Sequence[str]) -> list[Tracked]:
        raise NotSupported("the own fleet is reported by its drivers, never polled")

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Webhook:
        raise NotSupported("drivers report through POST /v1/driver-events")

    def cancel(self, tracking_number: str) -> None:
        raise NotSupported("a van's stop is cancelled by dispatch")

    def close(self) -> None:
        pass  # holds nothing
