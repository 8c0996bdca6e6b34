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

from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from fulfill_carriers.adapter import Tracked
from fulfill_carriers.errors import McfRefused, McfUnavailable
from fulfill_carriers.http import retryable, send
from fulfill_carriers.mcf import mapping
from fulfill_carriers.mcf.mapping import Address, Item, NewOrder, OrderState, Preview

OUTBOUND = "/fba/outbound/2020-07-01/fulfillmentOrders"
INVENTORY = "/fba/inventory/v1/summaries"
TRACKING = "/fba/outbound/2020-07-01/tracking"
SPEEDS = ("Standard", "Expedited", "Priority")


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
        return [mapping.preview(p) for p in payload.get("fulfillmentPreviews", [])]

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
        return mapping.order_state(payload)

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
        return mapping.tracked(package_number, payload)

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


def _describe(method: str, path: str, status: int, body: dict[str, Any]) -> str:
    errors = body.get("errors") or []
    said = "; ".join(
        f"{e.get('code')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
    )
    return f"{method} {path}: {status} {said}".strip()


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("code") if errors and isinstance(errors[0], dict) else None
