"""A sandbox of Amazon Multi-Channel Fulfillment over HTTP, for tests and the demo.

It serves the calls ``fulfill_carriers.mcf`` makes, shaped like Amazon's models: fulfillment
preview, create, get and cancel a fulfillment order, inventory summaries (paged), and Amazon's
sandbox-only calls to stock items and to move an order's status. Orders move through Received,
Processing and Complete by themselves every ``step_s`` seconds if given (a package with a
tracking number appears at Complete). ``/sandbox/*`` is ours: trouble on demand
(``fulfill_carriers.sandboxing``: an outage, a delay, answers that are not JSON, a rate limit)
and what the sandbox holds, so that tests can count what it received.

    python -m fulfill_carriers.mcf.sandbox --port 8766 --step 30
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from fulfill_carriers.mcf.sandbox_state import (
    ADDRESS_FIELDS,
    FEES,
    ORDER_FIELDS,
    TRANSIT_DAYS,
    SandboxOrder,
    SandboxState,
    order_payload,
    package_number,
    summary,
    tracking_payload,
)
from fulfill_carriers.sandboxing import add_trouble, stamp


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


def _refuse(status: int, message: str) -> Response:
    if status == 429:
        return _errors(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
    return _errors(503, "ServiceUnavailable", "Temporary overloading or maintenance.")


def sandbox_app(state: SandboxState | None = None) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="Amazon MCF sandbox (fulfill)")
    app.state.sandbox = state

    add_trouble(app, state, _refuse)
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
                            "earliestShipDate": stamp(now),
                            "latestShipDate": stamp(now),
                            "earliestArrivalDate": stamp(now + timedelta(days=low)),
                            "latestArrivalDate": stamp(now + timedelta(days=high)),
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
            return _ok({"payload": order_payload(order_id, order)})

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
            return _ok({"payload": tracking_payload(order_id, order, now, state.step_s)})


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
            rows = [summary(sku, state, q.get("details") == "true") for sku in page]
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
