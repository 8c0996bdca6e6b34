"""Amazon's models as ours: the payloads we send (an address, items, a new fulfillment order)
and what we read back (previews, orders with their packages, package tracking), with the table
of Amazon's tracking event codes in the normalised vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fulfill_carriers.adapter import CarrierEvent, ExceptionReason, Tracked
from fulfill_carriers.status import TrackingStatus

# Statuses after which Amazon no longer accepts a cancellation (compared case-insensitively: its
# enum says "Processing", its examples "PROCESSING").
NOT_CANCELLABLE = {"processing", "complete", "completepartialled", "cancelled", "unfulfillable"}


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country_code: str
    line2: str | None = None
    state_or_region: str | None = None
    phone: str | None = None

    def payload(self) -> dict[str, str]:
        body = {
            "name": self.name,
            "addressLine1": self.line1,
            "addressLine2": self.line2,
            "city": self.city,
            "stateOrRegion": self.state_or_region,
            "postalCode": self.postal_code,
            "countryCode": self.country_code,
            "phone": self.phone,
        }
        return {k: v for k, v in body.items() if v}


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    item_id: str  # sellerFulfillmentOrderItemId: unique within the order


@dataclass(frozen=True)
class Preview:
    speed: str
    fulfillable: bool
    fees: float
    currency: str | None
    earliest_arrival: datetime | None
    latest_arrival: datetime | None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Package:
    carrier_code: str
    tracking_number: str | None
    shipment_status: str
    estimated_arrival: datetime | None
    package_number: int | None = None  # what getPackageTrackingDetails asks for


@dataclass(frozen=True)
class OrderState:
    seller_order_id: str
    status: str
    items: dict[str, int]  # item id -> quantity
    packages: tuple[Package, ...] = field(default=())

    @property
    def cancellable(self) -> bool:
        return self.status.lower() not in NOT_CANCELLABLE


@dataclass(frozen=True)
class NewOrder:
    seller_order_id: str
    displayable_order_id: str
    ordered_at: datetime
    speed: str
    address: Address
    items: tuple[Item, ...]
    comment: str = "Thank you for your order"
    notification_emails: tuple[str, ...] = ()

    def payload(self, marketplace_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "marketplaceId": marketplace_id,
            "sellerFulfillmentOrderId": self.seller_order_id,
            "displayableOrderId": self.displayable_order_id[:40],
            "displayableOrderDate": timestamp(self.ordered_at),
            "displayableOrderComment": self.comment[:750],
            "shippingSpeedCategory": self.speed,
            "destinationAddress": self.address.payload(),
            "fulfillmentAction": "Ship",
            "fulfillmentPolicy": "FillOrKill",
            "items": [
                {
                    "sellerSku": i.sku,
                    "sellerFulfillmentOrderItemId": i.item_id,
                    "quantity": i.quantity,
                }
                for i in self.items
            ],
        }
        if self.notification_emails:
            body["notificationEmails"] = list(self.notification_emails)
        return body


def timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at.utcoffset() is not None else at.isoformat()


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def preview(p: dict[str, Any]) -> Preview:
    fees = p.get("estimatedFees") or []
    shipments = p.get("fulfillmentPreviewShipments") or []
    arrivals = [s.get("latestArrivalDate") for s in shipments if s.get("latestArrivalDate")]
    earliest = [s.get("earliestArrivalDate") for s in shipments if s.get("earliestArrivalDate")]
    reasons = list(p.get("orderUnfulfillableReasons") or [])
    for item in p.get("unfulfillablePreviewItems") or []:
        reasons += [
            f"{item.get('sellerSku')}: {r}" for r in item.get("itemUnfulfillableReasons", [])
        ]
    return Preview(
        speed=p["shippingSpeedCategory"],
        fulfillable=bool(p.get("isFulfillable")),
        fees=round(sum(float(f["amount"]["value"]) for f in fees), 2),
        currency=fees[0]["amount"]["currencyCode"] if fees else None,
        earliest_arrival=when(min(earliest)) if earliest else None,
        latest_arrival=when(max(arrivals)) if arrivals else None,
        reasons=tuple(reasons),
    )


def order_state(payload: dict[str, Any]) -> OrderState:
    order = payload["fulfillmentOrder"]
    packages = []
    for shipment in payload.get("fulfillmentShipments") or []:
        for package in shipment.get("fulfillmentShipmentPackage") or []:
            packages.append(
                Package(
                    carrier_code=package.get("carrierCode", ""),
                    tracking_number=package.get("trackingNumber"),
                    shipment_status=shipment.get("fulfillmentShipmentStatus", ""),
                    estimated_arrival=when(package.get("estimatedArrivalDate")),
                    package_number=package.get("packageNumber"),
                )
            )
    return OrderState(
        seller_order_id=order["sellerFulfillmentOrderId"],
        status=order["fulfillmentOrderStatus"],
        items={
            i["sellerFulfillmentOrderItemId"]: int(i["quantity"])
            for i in payload.get("fulfillmentOrderItems") or []
        },
        packages=tuple(packages),
    )


# getPackageTrackingDetails' EventCode, as Amazon's model describes each.
EVENTS: dict[str, tuple[TrackingStatus, ExceptionReason | None]] = {
    "EVENT_101": (TrackingStatus.INFO_RECEIVED, None),  # carrier notified to pick up
    "EVENT_102": (TrackingStatus.PICKED_UP, None),
    "EVENT_201": (TrackingStatus.IN_TRANSIT, None),  # arrival scan
    "EVENT_202": (TrackingStatus.IN_TRANSIT, None),  # departure scan
    "EVENT_203": (TrackingStatus.IN_TRANSIT, None),  # arrived at destination country
    "EVENT_204": (TrackingStatus.IN_TRANSIT, None),  # customs clearance started
    "EVENT_205": (TrackingStatus.IN_TRANSIT, None),  # customs clearance completed
    "EVENT_206": (TrackingStatus.IN_TRANSIT, None),  # in transit to pickup location
    "EVENT_301": (TrackingStatus.DELIVERED, None),
    "EVENT_302": (TrackingStatus.OUT_FOR_DELIVERY, None),
    "EVENT_304": (TrackingStatus.ATTEMPT_FAILED, ExceptionReason.NOT_HOME),
    "EVENT_306": (TrackingStatus.IN_TRANSIT, None),  # customer contacted to arrange delivery
    "EVENT_307": (TrackingStatus.IN_TRANSIT, None),  # delivery appointment scheduled
    "EVENT_308": (TrackingStatus.AVAILABLE_FOR_PICKUP, None),
    "EVENT_309": (TrackingStatus.RETURNED, None),
    "EVENT_401": (TrackingStatus.EXCEPTION, ExceptionReason.ADDRESS),
    "EVENT_402": (TrackingStatus.EXCEPTION, ExceptionReason.CUSTOMS),
    "EVENT_403": (TrackingStatus.EXCEPTION, ExceptionReason.ADDRESS),  # customer moved
    "EVENT_404": (TrackingStatus.EXCEPTION, ExceptionReason.WEATHER),  # external factors
    "EVENT_405": (TrackingStatus.EXCEPTION, ExceptionReason.DAMAGED),
    "EVENT_406": (TrackingStatus.EXCEPTION, ExceptionReason.HELD),
    "EVENT_407": (TrackingStatus.EXCEPTION, ExceptionReason.REFUSED),
    "EVENT_408": (TrackingStatus.RETURNING, None),
    "EVENT_409": (TrackingStatus.EXCEPTION, ExceptionReason.LOST),
    "EVENT_411": (TrackingStatus.EXCEPTION, ExceptionReason.OTHER),  # paperwork, no shipment
    "EVENT_412": (TrackingStatus.EXCEPTION, ExceptionReason.CUSTOMS),  # shipment, no paperwork
    "EVENT_413": (TrackingStatus.EXCEPTION, ExceptionReason.REFUSED),  # customs charges
    "EVENT_414": (TrackingStatus.EXCEPTION, ExceptionReason.DELAYED),  # missorted
    "EVENT_415": (TrackingStatus.IN_TRANSIT, None),  # received from prior carrier
    "EVENT_416": (TrackingStatus.EXCEPTION, ExceptionReason.ADDRESS),  # undeliverable
    "EVENT_417": (TrackingStatus.EXCEPTION, ExceptionReason.DELAYED),  # missorted
    "EVENT_418": (TrackingStatus.EXCEPTION, ExceptionReason.DELAYED),
    "EVENT_419": (TrackingStatus.IN_TRANSIT, None),  # address corrected, rescheduled
    "EVENT_801": (TrackingStatus.AVAILABLE_FOR_PICKUP, None),  # delivered to a locker
    "EVENT_804": (TrackingStatus.DELIVERED, None),  # picked up from the locker
}


def tracked(package_number: int, payload: dict[str, Any]) -> Tracked:
    number = str(payload.get("trackingNumber") or package_number)
    eta = when(payload.get("estimatedArrivalDate"))
    events = []
    for e in payload.get("trackingEvents") or []:
        code = str(e.get("eventCode", ""))
        status, reason = EVENTS.get(code, (TrackingStatus.UNKNOWN, None))
        at = when(e.get("eventDate"))
        if at is None:
            continue
        place = e.get("eventAddress") or {}
        where = ", ".join(str(place[k]) for k in ("city", "state", "country") if place.get(k))
        events.append(
            CarrierEvent(
                number,
                status,
                code,
                at,
                str(e.get("eventDescription") or ""),
                where or None,
                reason,
                eta,
            )
        )
    events.sort(key=lambda ev: ev.occurred_at)
    return Tracked(number, tuple(events), eta)
