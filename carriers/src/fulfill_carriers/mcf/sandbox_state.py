"""What the Amazon MCF sandbox holds (stock, reservations, orders moving through their life)
and the payloads it answers with, shaped like Amazon's models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fulfill_carriers.sandboxing import Trouble, stamp

FEES = {"Standard": 3.5, "Expedited": 4.6, "Priority": 6.2}  # per unit
TRANSIT_DAYS = {"Standard": (3, 5), "Expedited": (2, 3), "Priority": (1, 1)}
ORDER_FIELDS = (
    "sellerFulfillmentOrderId",
    "displayableOrderId",
    "displayableOrderDate",
    "displayableOrderComment",
    "shippingSpeedCategory",
    "destinationAddress",
    "items",
)
ADDRESS_FIELDS = ("name", "addressLine1", "postalCode", "countryCode")
LIFE = ("Received", "Processing", "Complete")
SHIPMENT_STATUS = {"Processing": "PENDING", "Complete": "SHIPPED"}


@dataclass
class SandboxOrder:
    request: dict[str, Any]
    received: datetime
    status: str = "Received"
    status_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class SandboxState(Trouble):
    step_s: float | None = None
    page_size: int = 50
    inventory: dict[str, int] = field(default_factory=dict)  # sku -> fulfillable
    reserved: dict[str, int] = field(default_factory=dict)
    orders: dict[str, SandboxOrder] = field(default_factory=dict)
    creates: int = 0  # create calls that made an order
    tokens: set[str] = field(default_factory=set)

    def advance(self, now: datetime) -> None:
        """Move orders along their life by the clock, when the sandbox moves them itself."""
        if not self.step_s:
            return
        for order in self.orders.values():
            while order.status in LIFE[:-1] and now - order.status_at >= timedelta(
                seconds=self.step_s
            ):
                order.status_at += timedelta(seconds=self.step_s)
                self._set_status(order, LIFE[LIFE.index(order.status) + 1])

    def _set_status(self, order: SandboxOrder, status: str) -> None:
        if status == "Complete" and order.status != "Complete":
            for item in order.request["items"]:
                self.reserved[item["sellerSku"]] -= item["quantity"]
        if status == "Cancelled" and order.status != "Cancelled":
            for item in order.request["items"]:
                self.reserved[item["sellerSku"]] -= item["quantity"]
                self.inventory[item["sellerSku"]] += item["quantity"]
        order.status = status


def summary(sku: str, state: SandboxState, details: bool) -> dict[str, Any]:
    fulfillable = state.inventory.get(sku, 0)
    reserved = state.reserved.get(sku, 0)
    row: dict[str, Any] = {
        "sellerSku": sku,
        "fnSku": digits("X00", sku, 7),
        "condition": "NewItem",
        "totalQuantity": fulfillable + reserved,
        "lastUpdatedTime": stamp(datetime.now(UTC)),
    }
    if details:
        row["inventoryDetails"] = {
            "fulfillableQuantity": fulfillable,
            "reservedQuantity": {
                "totalReservedQuantity": reserved,
                "pendingCustomerOrderQuantity": reserved,
            },
        }
    return row


def digits(prefix: str, key: str, n: int) -> str:
    """A stable made-up identifier, the same for the same key in every run."""
    return f"{prefix}{uuid.uuid5(uuid.NAMESPACE_URL, key).int % 10**n:0{n}d}"


def package_number(order_id: str) -> int:
    return int(digits("", f"package:{order_id}", 9))


# A shipped package's life after Complete, one step apart: Amazon's event codes and words.
PACKAGE_LIFE = (
    ("EVENT_101", "Carrier notified to pick up package."),
    ("EVENT_102", "Shipment picked up from seller's facility."),
    ("EVENT_201", "Arrival scan."),
    ("EVENT_202", "Departure scan."),
    ("EVENT_302", "Out for delivery."),
    ("EVENT_301", "Delivered."),
)
CURRENT = {"EVENT_302": "OUT_FOR_DELIVERY", "EVENT_301": "DELIVERED"}


def tracking_payload(
    order_id: str, order: SandboxOrder, now: datetime, step_s: float | None
) -> dict[str, Any]:
    steps = (
        len(PACKAGE_LIFE)
        if not step_s
        else int((now - order.status_at) / timedelta(seconds=step_s)) + 1
    )
    happened = PACKAGE_LIFE[: max(1, min(steps, len(PACKAGE_LIFE)))]
    city = order.request["destinationAddress"].get("city", "")
    events = [
        {
            "eventDate": stamp(order.status_at + timedelta(seconds=(step_s or 1) * k)),
            "eventAddress": {"city": "Calgary" if k < 4 else city, "state": "AB", "country": "CA"},
            "eventCode": code,
            "eventDescription": words,
        }
        for k, (code, words) in enumerate(happened)
    ]
    arrival = order.received + timedelta(
        days=TRANSIT_DAYS[order.request["shippingSpeedCategory"]][1]
    )
    return {
        "packageNumber": package_number(order_id),
        "trackingNumber": digits("TBC", order_id, 10),
        "carrierCode": "AMZN_CA",
        "shipDate": stamp(order.status_at),
        "estimatedArrivalDate": stamp(arrival),
        "currentStatus": CURRENT.get(happened[-1][0], "IN_TRANSIT"),
        "trackingEvents": events,
    }


def item(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("sellerSku", "sellerFulfillmentOrderItemId", "quantity")
    return {k: item[k] for k in keys}


def order_payload(order_id: str, order: SandboxOrder) -> dict[str, Any]:
    request = order.request
    speed = request["shippingSpeedCategory"]
    arrival = order.received + timedelta(days=TRANSIT_DAYS[speed][1])
    cancelled = order.status == "Cancelled"
    items = [
        {
            **item(i),
            "cancelledQuantity": i["quantity"] if cancelled else 0,
            "unfulfillableQuantity": 0,
            "estimatedArrivalDate": stamp(arrival),
        }
        for i in request["items"]
    ]
    shipments = []
    if order.status in ("Processing", "Complete", "Cancelled"):
        shipped = order.status == "Complete"
        status = SHIPMENT_STATUS.get(order.status, "CANCELLED_BY_SELLER")
        shipment: dict[str, Any] = {
            "amazonShipmentId": f"D{order_id[-8:]}",
            "fulfillmentCenterId": "YYC1",
            "fulfillmentShipmentStatus": status,
            "estimatedArrivalDate": stamp(arrival),
            "fulfillmentShipmentItem": [{**item(i), "packageNumber": 1} for i in request["items"]],
        }
        if shipped:
            shipment["fulfillmentShipmentPackage"] = [
                {
                    "packageNumber": package_number(order_id),
                    "carrierCode": "AMZN_CA",
                    "trackingNumber": digits("TBC", order_id, 10),
                    "estimatedArrivalDate": stamp(arrival),
                }
            ]
        shipments.append(shipment)
    return {
        "fulfillmentOrder": {
            "sellerFulfillmentOrderId": order_id,
            "marketplaceId": request.get("marketplaceId", ""),
            "displayableOrderId": request["displayableOrderId"],
            "displayableOrderDate": request["displayableOrderDate"],
            "displayableOrderComment": request["displayableOrderComment"],
            "shippingSpeedCategory": speed,
            "destinationAddress": request["destinationAddress"],
            "fulfillmentAction": request.get("fulfillmentAction", "Ship"),
            "fulfillmentPolicy": request.get("fulfillmentPolicy", "FillOrKill"),
            "receivedDate": stamp(order.received),
            "fulfillmentOrderStatus": order.status,
            "statusUpdatedDate": stamp(order.status_at),
        },
        "fulfillmentOrderItems": items,
        "fulfillmentShipments": shipments,
        "returnItems": [],
        "returnAuthorizations": [],
    }
