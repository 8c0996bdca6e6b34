"""Amazon Multi-Channel Fulfillment: the Fulfillment Outbound (2020-07-01) and FBA Inventory (v1)
APIs of the Selling Partner API, as far as a shop that ships through it needs them.

Field names follow Amazon's published models (``carriers/specs/amazon-mcf``). Errors come in two
kinds: a call that may work later (a timeout, a refused connection, 429 or 5xx) raises
``McfUnavailable``; a refusal of the request itself raises ``McfRefused`` with Amazon's error
code and message.

``ensure_created`` is the only way to create a fulfillment order: the seller fulfillment order
id is the idempotency key, so a retry after a lost answer or a replayed task finds the order it
created the first time instead of creating a second one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from fulfill_carriers.adapter import (
    CarrierError,
    CarrierEvent,
    CarrierRefused,
    CarrierUnavailable,
    CreatedShipment,
    ExceptionReason,
    NotSupported,
    Parcel,
    Tracked,
    Webhook,
)
from fulfill_carriers.http import retryable, send
from fulfill_carriers.status import TrackingStatus

OUTBOUND = "/fba/outbound/2020-07-01/fulfillmentOrders"
INVENTORY = "/fba/inventory/v1/summaries"
TRACKING = "/fba/outbound/2020-07-01/tracking"
SPEEDS = ("Standard", "Expedited", "Priority")
# Statuses after which Amazon no longer accepts a cancellation (compared case-insensitively: its
# enum says "Processing", its examples "PROCESSING").
NOT_CANCELLABLE = {"processing", "complete", "completepartialled", "cancelled", "unfulfillable"}


class McfError(CarrierError):
    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, status)
        self.code = code


class McfUnavailable(McfError, CarrierUnavailable):
    """The call may succeed later: retry with backoff."""


class McfRefused(McfError, CarrierRefused):
    """Amazon refused the request as it is; retrying it unchanged will not help."""


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
            "displayableOrderDate": _timestamp(self.ordered_at),
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


class McfClient:
    def __init__(
        self,
        base_url: str,
        *,
        marketplace_id: str,
        token: str | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "fulfill (+https://fulfill.dev)"}
        if token:
            headers["x-amz-access-token"] = token
        self.marketplace_id = marketplace_id
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> McfClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def preview(
        self, address: Address, items: Sequence[Item], speeds: Sequence[str] = SPEEDS
    ) -> list[Preview]:
        body = {
            "marketplaceId": self.marketplace_id,
            "address": address.payload(),
            "items": [
                {
                    "sellerSku": i.sku,
                    "quantity": i.quantity,
                    "sellerFulfillmentOrderItemId": i.item_id,
                }
                for i in items
            ],
            "shippingSpeedCategories": list(speeds),
        }
        payload = self._call("POST", f"{OUTBOUND}/preview", json=body)
        return [_preview(p) for p in payload.get("fulfillmentPreviews", [])]

    def ensure_created(self, order: NewOrder) -> OrderState:
        """The fulfillment order ``order.seller_order_id``, created unless it exists already."""
        existing = self.get(order.seller_order_id)
        if existing is not None:
            return existing
        try:
            self._call("POST", OUTBOUND, json=order.payload(self.marketplace_id))
        except McfRefused:
            # A concurrent or earlier attempt may have created it between our two calls.
            existing = self.get(order.seller_order_id)
            if existing is None:
                raise
            return existing
        created = self.get(order.seller_order_id)
        if created is None:
            raise McfUnavailable(f"{order.seller_order_id} was accepted but cannot be read yet")
        return created

    def get(self, seller_order_id: str) -> OrderState | None:
        try:
            payload = self._call("GET", f"{OUTBOUND}/{seller_order_id}")
        except McfRefused as exc:
            if exc.status == 404:
                return None
            raise
        return _order_state(payload)

    def cancel(self, seller_order_id: str) -> None:
        self._call("PUT", f"{OUTBOUND}/{seller_order_id}/cancel")

    def package_tracking(self, package_number: int) -> Tracked:
        """getPackageTrackingDetails: the package's events, normalised, Amazon's codes kept."""
        try:
            payload = self._call("GET", TRACKING, params={"packageNumber": str(package_number)})
        except McfRefused as exc:
            if exc.status == 404:
                return Tracked(str(package_number), known=False)
            raise
        return _tracked(package_number, payload)

    def inventory(self, skus: Iterable[str] | None = None) -> dict[str, int]:
        """Fulfillable units per seller sku, every page followed (50 skus a call when asked)."""
        wanted = sorted(set(skus)) if skus is not None else None
        batches: list[list[str] | None] = (
            [wanted[k : k + 50] for k in range(0, len(wanted), 50)] if wanted else [None]
        )
        if wanted == []:
            return {}
        found: dict[str, int] = {}
        for batch in batches:
            found.update(self._inventory_pages(batch))
        return found

    def _inventory_pages(self, skus: list[str] | None) -> dict[str, int]:
        found: dict[str, int] = {}
        token: str | None = None
        while True:
            params: dict[str, str] = {
                "details": "true",
                "granularityType": "Marketplace",
                "granularityId": self.marketplace_id,
                "marketplaceIds": self.marketplace_id,
            }
            if skus:
                params["sellerSkus"] = ",".join(skus)
            if token:
                params["nextToken"] = token
            body = self._call("GET", INVENTORY, params=params, whole=True)
            for summary in (body.get("payload") or {}).get("inventorySummaries", []):
                details = summary.get("inventoryDetails") or {}
                units = details.get("fulfillableQuantity", summary.get("totalQuantity", 0))
                if summary.get("sellerSku"):
                    found[summary["sellerSku"]] = int(units or 0)
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                return found

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        whole: bool = False,
    ) -> dict[str, Any]:
        status, body = send(self._http, method, path, McfUnavailable, json=json, params=params)
        if retryable(status):
            raise McfUnavailable(_describe(method, path, status, body), status, _code(body))
        if status >= 400:
            raise McfRefused(_describe(method, path, status, body), status, _code(body))
        if whole:
            return body
        payload = body.get("payload")
        return payload if isinstance(payload, dict) else {}


class McfCarrier:
    """The third party as a carrier for tracking: its packages are followed by package number
    (``tracking_ref``); orders are created and cancelled through ``McfClient`` itself."""

    code = "amazon_mcf"
    batch_size = 1  # getPackageTrackingDetails takes one package

    def __init__(self, client: McfClient) -> None:
        self.client = client

    def track(self, tracking_numbers: Sequence[str]) -> list[Tracked]:
        found = []
        for ref in tracking_numbers:
            if not ref.isdigit():
                found.append(Tracked(ref, known=False))
                continue
            tracked = self.client.package_tracking(int(ref))
            found.append(Tracked(ref, tracked.events, tracked.eta, tracked.known))
        return found

    def create_shipment(self, parcel: Parcel) -> CreatedShipment:
        raise NotSupported("fulfillment orders are created with McfClient.ensure_created")

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Webhook:
        raise NotSupported("Amazon notifies through SQS, not webhooks; its packages are polled")

    def cancel(self, tracking_number: str) -> None:
        raise NotSupported("cancel the fulfillment order with McfClient.cancel")

    def close(self) -> None:
        self.client.close()


def _describe(method: str, path: str, status: int, body: dict[str, Any]) -> str:
    errors = body.get("errors") or []
    said = "; ".join(
        f"{e.get('code')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
    )
    return f"{method} {path}: {status} {said}".strip()


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("code") if errors and isinstance(errors[0], dict) else None


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at.utcoffset() is not None else at.isoformat()


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _preview(p: dict[str, Any]) -> Preview:
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
        earliest_arrival=_when(min(earliest)) if earliest else None,
        latest_arrival=_when(max(arrivals)) if arrivals else None,
        reasons=tuple(reasons),
    )


def _order_state(payload: dict[str, Any]) -> OrderState:
    order = payload["fulfillmentOrder"]
    packages = []
    for shipment in payload.get("fulfillmentShipments") or []:
        for package in shipment.get("fulfillmentShipmentPackage") or []:
            packages.append(
                Package(
                    carrier_code=package.get("carrierCode", ""),
                    tracking_number=package.get("trackingNumber"),
                    shipment_status=shipment.get("fulfillmentShipmentStatus", ""),
                    estimated_arrival=_when(package.get("estimatedArrivalDate")),
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


def _tracked(package_number: int, payload: dict[str, Any]) -> Tracked:
    number = str(payload.get("trackingNumber") or package_number)
    eta = _when(payload.get("estimatedArrivalDate"))
    events = []
    for e in payload.get("trackingEvents") or []:
        code = str(e.get("eventCode", ""))
        status, reason = EVENTS.get(code, (TrackingStatus.UNKNOWN, None))
        at = _when(e.get("eventDate"))
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
