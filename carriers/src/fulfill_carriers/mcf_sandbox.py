"""A sandbox of Amazon Multi-Channel Fulfillment over HTTP, for tests and the demo.

It serves the calls ``fulfill_carriers.mcf`` makes, shaped like Amazon's models: fulfillment
preview, create, get and cancel a fulfillment order, inventory summaries (paged), and Amazon's
sandbox-only calls to stock items and to move an order's status. Orders move through Received,
Processing and Complete by themselves every ``step_s`` seconds if given (a package with a
tracking number appears at Complete). ``/sandbox/*`` is ours: trouble on demand (an outage, or a
delay on every answer) and what the sandbox holds, so that tests can count what it received.

    python -m fulfill_carriers.mcf_sandbox --port 8766 --step 30
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
class SandboxState:
    step_s: float | None = None
    page_size: int = 50
    inventory: dict[str, int] = field(default_factory=dict)  # sku -> fulfillable
    reserved: dict[str, int] = field(default_factory=dict)
    orders: dict[str, SandboxOrder] = field(default_factory=dict)
    creates: int = 0  # create calls that made an order
    down: bool = False
    delay_s: float = 0.0
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

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


def _errors(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "message": message}]},
        status_code=status,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def _ok(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        body, headers={"x-amzn-RequestId": str(uuid.uuid4()), "x-amzn-RateLimit-Limit": "2.0"}
    )


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sandbox_app(state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="Amazon MCF sandbox (fulfill)")
    app.state.sandbox = state

    @app.middleware("http")
    async def trouble(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith("/sandbox/"):
            return await call_next(request)
        if state.delay_s:
            await asyncio.sleep(state.delay_s)  # a slow third party, without stalling the others
        if state.down:
            return _errors(503, "ServiceUnavailable", "Temporary overloading or maintenance.")
        return await call_next(request)

    _outbound_routes(app, state)
    _inventory_routes(app, state)
    _tracking_routes(app, state)
    _control_routes(app, state)
    return app


def _outbound_routes(app: FastAPI, state: SandboxState) -> None:
    @app.post("/fba/outbound/2020-07-01/fulfillmentOrders/preview")
    def preview(body: dict[str, Any]) -> JSONResponse:
        problem = _missing(body, ("address", "items")) or _missing(
            body.get("address") or {}, ADDRESS_FIELDS
        )
        if problem:
            return _errors(400, "InvalidInput", problem)
        now = datetime.now(UTC)
        speeds = body.get("shippingSpeedCategories") or list(FEES)
        previews = []
        for speed in speeds:
            if speed not in FEES:
                return _errors(400, "InvalidInput", f"unknown shippingSpeedCategory {speed}")
            short = [i for i in body["items"] if _short(state, i)]
            units = sum(int(i["quantity"]) for i in body["items"])
            low, high = TRANSIT_DAYS[speed]
            previews.append(
                {
                    "shippingSpeedCategory": speed,
                    "isFulfillable": not short,
                    "isCODCapable": False,
                    "marketplaceId": body.get("marketplaceId", ""),
                    "estimatedFees": [
                        {
                            "name": "FBAPerUnitFulfillmentFee",
                            "amount": {
                                "currencyCode": "CAD",
                                "value": f"{FEES[speed] * units:.2f}",
                            },
                        }
                    ],
                    "fulfillmentPreviewShipments": []
                    if short
                    else [
                        {
                            "earliestShipDate": _stamp(now),
                            "latestShipDate": _stamp(now),
                            "earliestArrivalDate": _stamp(now + timedelta(days=low)),
                            "latestArrivalDate": _stamp(now + timedelta(days=high)),
                            "fulfillmentPreviewItems": [
                                {
                                    "sellerSku": i["sellerSku"],
                                    "quantity": i["quantity"],
                                    "sellerFulfillmentOrderItemId": i[
                                        "sellerFulfillmentOrderItemId"
                                    ],
                                }
                                for i in body["items"]
                            ],
                        }
                    ],
                    "unfulfillablePreviewItems": [
                        {**i, "itemUnfulfillableReasons": ["InventoryUnavailable"]} for i in short
                    ],
                }
            )
        return _ok({"payload": {"fulfillmentPreviews": previews}})

    @app.post("/fba/outbound/2020-07-01/fulfillmentOrders")
    def create(body: dict[str, Any]) -> JSONResponse:
        problem = _missing(body, ORDER_FIELDS) or _missing(
            body["destinationAddress"], ADDRESS_FIELDS
        )
        if problem:
            return _errors(400, "InvalidInput", problem)
        order_id = str(body["sellerFulfillmentOrderId"])
        if len(order_id) > 40:
            return _errors(400, "InvalidInput", "sellerFulfillmentOrderId is longer than 40")
        if body["shippingSpeedCategory"] not in FEES:
            return _errors(400, "InvalidInput", "unknown shippingSpeedCategory")
        with state.lock:
            if order_id in state.orders:
                return _errors(400, "InvalidInput", f"{order_id} already exists")
            short = [i["sellerSku"] for i in body["items"] if _short(state, i)]
            if short:
                return _errors(400, "InvalidInput", f"unfulfillable, not enough of: {short}")
            for item in body["items"]:
                sku, units = item["sellerSku"], int(item["quantity"])
                state.inventory[sku] -= units
                state.reserved[sku] = state.reserved.get(sku, 0) + units
            state.orders[order_id] = SandboxOrder(body, datetime.now(UTC))
            state.creates += 1
        return _ok({})

    @app.get("/fba/outbound/2020-07-01/fulfillmentOrders/{order_id}")
    def get(order_id: str) -> JSONResponse:
        with state.lock:
            state.advance(datetime.now(UTC))
            order = state.orders.get(order_id)
            if order is None:
                return _errors(404, "NotFound", f"no fulfillment order {order_id}")
            return _ok({"payload": _order_payload(order_id, order)})

    @app.put("/fba/outbound/2020-07-01/fulfillmentOrders/{order_id}/cancel")
    def cancel(order_id: str) -> JSONResponse:
        with state.lock:
            state.advance(datetime.now(UTC))
            order = state.orders.get(order_id)
            if order is None:
                return _errors(404, "NotFound", f"no fulfillment order {order_id}")
            if order.status == "Cancelled":
                return _ok({})
            if order.status not in ("New", "Received", "Planning"):
                return _errors(400, "InvalidInput", f"{order_id} is {order.status}: too late")
            state._set_status(order, "Cancelled")
            order.status_at = datetime.now(UTC)
        return _ok({})

    @app.put("/fba/outbound/2020-07-01/fulfillmentOrders/{order_id}/status")
    def set_status(order_id: str, body: dict[str, Any]) -> JSONResponse:
        """Amazon's sandbox-only call: move an order to a status."""
        with state.lock:
            order = state.orders.get(order_id)
            if order is None:
                return _errors(404, "NotFound", f"no fulfillment order {order_id}")
            state._set_status(order, str(body.get("fulfillmentOrderStatus", order.status)))
            order.status_at = datetime.now(UTC)
        return _ok({})


def _tracking_routes(app: FastAPI, state: SandboxState) -> None:
    @app.get("/fba/outbound/2020-07-01/tracking")
    def tracking(packageNumber: int) -> JSONResponse:  # noqa: N803 (Amazon's name)
        with state.lock:
            now = datetime.now(UTC)
            state.advance(now)
            found = [
                (k, o)
                for k, o in state.orders.items()
                if o.status == "Complete" and package_number(k) == packageNumber
            ]
            if not found:
                return _errors(404, "NotFound", f"no package {packageNumber}")
            order_id, order = found[0]
            return _ok({"payload": _tracking_payload(order_id, order, now, state.step_s)})


def _inventory_routes(app: FastAPI, state: SandboxState) -> None:
    @app.get("/fba/inventory/v1/summaries")
    def summaries(request: Request) -> JSONResponse:
        q = request.query_params
        if (
            q.get("granularityType") != "Marketplace"
            or not q.get("granularityId")
            or not q.get("marketplaceIds")
        ):
            return _errors(
                400, "InvalidInput", "give granularityType, granularityId, marketplaceIds"
            )
        skus = [s for s in q.get("sellerSkus", "").split(",") if s]
        with state.lock:
            names = sorted(skus or state.inventory)
            start = int(q.get("nextToken") or 0)
            page = names[start : start + state.page_size]
            rows = [_summary(sku, state, q.get("details") == "true") for sku in page]
        body: dict[str, Any] = {
            "payload": {
                "granularity": {
                    "granularityType": "Marketplace",
                    "granularityId": q["granularityId"],
                },
                "inventorySummaries": rows,
            }
        }
        if start + state.page_size < len(names):
            body["pagination"] = {"nextToken": str(start + state.page_size)}
        return _ok(body)

    @app.post("/fba/inventory/v1/items")
    def create_item(body: dict[str, Any]) -> JSONResponse:
        """Amazon's sandbox-only call: a new sku with no units."""
        problem = _missing(body, ("sellerSku", "marketplaceId", "productName"))
        if problem:
            return _errors(400, "InvalidInput", problem)
        with state.lock:
            state.inventory.setdefault(body["sellerSku"], 0)
        return _ok({})

    @app.post("/fba/inventory/v1/items/inventory")
    def add_inventory(body: dict[str, Any], request: Request) -> JSONResponse:
        """Amazon's sandbox-only call: units arrive; once per idempotency token."""
        token = request.headers.get("x-amzn-idempotency-token")
        if not token:
            return _errors(400, "InvalidInput", "x-amzn-idempotency-token is required")
        with state.lock:
            if token in state.tokens:
                return _ok({})
            state.tokens.add(token)
            for item in body.get("inventoryItems") or []:
                sku = item["sellerSku"]
                state.inventory[sku] = state.inventory.get(sku, 0) + int(item["quantity"])
        return _ok({})


def _control_routes(app: FastAPI, state: SandboxState) -> None:
    @app.post("/sandbox/trouble")
    def trouble_on_demand(body: dict[str, Any]) -> dict[str, Any]:
        state.down = bool(body.get("down", state.down))
        state.delay_s = float(body.get("delay_s", state.delay_s))
        return {"down": state.down, "delay_s": state.delay_s}

    @app.get("/sandbox/orders")
    def sandbox_orders() -> dict[str, Any]:
        with state.lock:
            state.advance(datetime.now(UTC))
            return {
                "creates": state.creates,
                "orders": {
                    k: {"status": o.status, "items": o.request["items"]}
                    for k, o in state.orders.items()
                },
                "inventory": dict(state.inventory),
            }


def _short(state: SandboxState, item: dict[str, Any]) -> bool:
    return state.inventory.get(item["sellerSku"], 0) < int(item["quantity"])


def _missing(body: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    absent = [f for f in fields if body.get(f) in (None, "", [])]
    return f"missing required field(s): {', '.join(absent)}" if absent else None


def _summary(sku: str, state: SandboxState, details: bool) -> dict[str, Any]:
    fulfillable = state.inventory.get(sku, 0)
    reserved = state.reserved.get(sku, 0)
    row: dict[str, Any] = {
        "sellerSku": sku,
        "fnSku": _digits("X00", sku, 7),
        "condition": "NewItem",
        "totalQuantity": fulfillable + reserved,
        "lastUpdatedTime": _stamp(datetime.now(UTC)),
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


def _digits(prefix: str, key: str, n: int) -> str:
    """A stable made-up identifier, the same for the same key in every run."""
    return f"{prefix}{uuid.uuid5(uuid.NAMESPACE_URL, key).int % 10**n:0{n}d}"


def package_number(order_id: str) -> int:
    return int(_digits("", f"package:{order_id}", 9))


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


def _tracking_payload(
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
            "eventDate": _stamp(order.status_at + timedelta(seconds=(step_s or 1) * k)),
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
        "trackingNumber": _digits("TBC", order_id, 10),
        "carrierCode": "AMZN_CA",
        "shipDate": _stamp(order.status_at),
        "estimatedArrivalDate": _stamp(arrival),
        "currentStatus": CURRENT.get(happened[-1][0], "IN_TRANSIT"),
        "trackingEvents": events,
    }


def _item(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("sellerSku", "sellerFulfillmentOrderItemId", "quantity")
    return {k: item[k] for k in keys}


def _order_payload(order_id: str, order: SandboxOrder) -> dict[str, Any]:
    request = order.request
    speed = request["shippingSpeedCategory"]
    arrival = order.received + timedelta(days=TRANSIT_DAYS[speed][1])
    cancelled = order.status == "Cancelled"
    items = [
        {
            **_item(i),
            "cancelledQuantity": i["quantity"] if cancelled else 0,
            "unfulfillableQuantity": 0,
            "estimatedArrivalDate": _stamp(arrival),
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
            "estimatedArrivalDate": _stamp(arrival),
            "fulfillmentShipmentItem": [{**_item(i), "packageNumber": 1} for i in request["items"]],
        }
        if shipped:
            shipment["fulfillmentShipmentPackage"] = [
                {
                    "packageNumber": package_number(order_id),
                    "carrierCode": "AMZN_CA",
                    "trackingNumber": _digits("TBC", order_id, 10),
                    "estimatedArrivalDate": _stamp(arrival),
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
            "receivedDate": _stamp(order.received),
            "fulfillmentOrderStatus": order.status,
            "statusUpdatedDate": _stamp(order.status_at),
        },
        "fulfillmentOrderItems": items,
        "fulfillmentShipments": shipments,
        "returnItems": [],
        "returnAuthorizations": [],
    }


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Amazon MCF sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--step", type=float, default=None, help="seconds between order statuses")
    args = parser.parse_args()
    uvicorn.run(sandbox_app(SandboxState(step_s=args.step)), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
