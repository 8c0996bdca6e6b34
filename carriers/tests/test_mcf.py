"""The MCF adapter against the sandbox, over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from carrier_servers import free_port, served

import fulfill_carriers as mcf
from fulfill_carriers import TrackingStatus
from fulfill_carriers.mcf.mapping import EVENTS
from fulfill_carriers.sandboxes import McfSandboxState as SandboxState
from fulfill_carriers.sandboxes import mcf_sandbox_app as sandbox_app

ADDRESS = mcf.Address("Ada", "10220 103 Ave NW", "Edmonton", "T5J 0K4", "CA", state_or_region="AB")


@pytest.fixture
def sandbox() -> Iterator[tuple[str, SandboxState]]:
    state = SandboxState(page_size=2)
    with served(sandbox_app(state)) as url:
        yield url, state


def stock(url: str, units: dict[str, int], token: str = "t1") -> None:
    for sku in units:
        body = {"sellerSku": sku, "marketplaceId": "M", "productName": sku}
        assert httpx.post(f"{url}/fba/inventory/v1/items", json=body).status_code == 200
    items = [{"sellerSku": s, "marketplaceId": "M", "quantity": n} for s, n in units.items()]
    response = httpx.post(
        f"{url}/fba/inventory/v1/items/inventory",
        json={"inventoryItems": items},
        headers={"x-amzn-idempotency-token": token},
    )
    assert response.status_code == 200


def new_order(order_id: str = "ff-1", quantity: int = 2) -> mcf.NewOrder:
    return mcf.NewOrder(
        order_id,
        "web-1",
        datetime(2026, 11, 18, 15, 30, tzinfo=UTC),
        "Priority",
        ADDRESS,
        (mcf.Item("TEA-1", quantity, "TEA-1"),),
    )


def test_preview_create_get_cancel_and_inventory_follow_the_published_shapes(
    sandbox: tuple[str, SandboxState],
) -> None:
    url, _state = sandbox
    stock(url, {"TEA-1": 5, "MUG-1": 1, "CUP-1": 3})
    stock(url, {"TEA-1": 5}, token="t1")  # the same token again: no second delivery
    with mcf.McfClient(url, marketplace_id="M") as client:
        previews = {p.speed: p for p in client.preview(ADDRESS, [mcf.Item("TEA-1", 2, "a")])}
        assert set(previews) == {"Standard", "Expedited", "Priority"}
        assert previews["Priority"].fulfillable and previews["Priority"].fees == 12.4
        short = client.preview(ADDRESS, [mcf.Item("MUG-1", 2, "a")], ["Standard"])[0]
        assert not short.fulfillable and short.reasons == ("MUG-1: InventoryUnavailable",)
        assert client.inventory() == {"CUP-1": 3, "MUG-1": 1, "TEA-1": 5}  # two pages of two
        state_ = client.ensure_created(new_order())
        assert (state_.status, state_.items) == ("Received", {"TEA-1": 2})
        assert client.inventory(["TEA-1"]) == {"TEA-1": 3}
        client.cancel("ff-1")
        cancelled = client.get("ff-1")
        assert cancelled is not None and cancelled.status == "Cancelled"
        assert client.inventory(["TEA-1"]) == {"TEA-1": 5}
        assert client.get("nope") is None


def test_creating_twice_makes_one_order_even_when_the_first_answer_was_lost(
    sandbox: tuple[str, SandboxState],
) -> None:
    url, state = sandbox
    stock(url, {"TEA-1": 5})
    with mcf.McfClient(url, marketplace_id="M") as client:
        first = client.ensure_created(new_order())
        again = client.ensure_created(new_order())
    assert first == again and state.creates == 1
    # A second client that raced the first: its create is refused as a duplicate, and it
    # reads back the order the first one made instead of failing.
    raw = httpx.post(
        f"{url}/fba/outbound/2020-07-01/fulfillmentOrders", json=new_order().payload("M")
    )
    assert raw.status_code == 400 and state.creates == 1


def test_an_order_that_cannot_be_filled_is_refused_and_picking_cannot_be_cancelled(
    sandbox: tuple[str, SandboxState],
) -> None:
    url, _ = sandbox
    stock(url, {"TEA-1": 1})
    with mcf.McfClient(url, marketplace_id="M") as client:
        with pytest.raises(mcf.McfRefused, match="unfulfillable"):
            client.ensure_created(new_order(quantity=2))
        client.ensure_created(new_order("ff-2", quantity=1))
        httpx.put(
            f"{url}/fba/outbound/2020-07-01/fulfillmentOrders/ff-2/status",
            json={"fulfillmentOrderStatus": "Complete"},
        )
        shipped = client.get("ff-2")
        assert shipped is not None and not shipped.cancellable
        assert shipped.packages[0].tracking_number and shipped.packages[0].carrier_code
        with pytest.raises(mcf.McfRefused):
            client.cancel("ff-2")


def test_an_outage_a_timeout_and_garbage_are_unavailable_so_the_caller_retries(
    sandbox: tuple[str, SandboxState],
) -> None:
    url, state = sandbox
    state.down = True
    with mcf.McfClient(url, marketplace_id="M") as client, pytest.raises(mcf.McfUnavailable):
        client.get("ff-1")
    state.down, state.delay_s = False, 0.5
    slow = mcf.McfClient(url, marketplace_id="M", timeout_s=0.1)
    with slow, pytest.raises(mcf.McfUnavailable, match="Timeout"):
        slow.get("ff-1")
    nobody = mcf.McfClient(f"http://127.0.0.1:{free_port()}", marketplace_id="M")
    with nobody, pytest.raises(mcf.McfUnavailable, match="ConnectError"):
        nobody.inventory()

    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>maintenance</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        garbage = mcf.McfClient(f"http://127.0.0.1:{server.server_port}", marketplace_id="M")
        with garbage, pytest.raises(mcf.McfUnavailable, match="not JSON"):
            garbage.get("ff-1")
    finally:
        server.shutdown()


def test_a_shipped_package_is_tracked_with_amazons_event_codes_normalised(
    sandbox: tuple[str, SandboxState],
) -> None:
    url, _ = sandbox
    stock(url, {"TEA-1": 2})
    with mcf.McfClient(url, marketplace_id="M") as client:
        client.ensure_created(new_order("ff-3", quantity=1))
        httpx.put(
            f"{url}/fba/outbound/2020-07-01/fulfillmentOrders/ff-3/status",
            json={"fulfillmentOrderStatus": "Complete"},
        )
        shipped = client.get("ff-3")
        assert shipped is not None
        package = shipped.packages[0]
        assert package.package_number is not None
        tracked = client.package_tracking(package.package_number)
        assert tracked.tracking_number == package.tracking_number
        assert [e.raw_code for e in tracked.events][-1] == "EVENT_301"  # no step: all at once
        assert [e.status for e in tracked.events] == [
            TrackingStatus.INFO_RECEIVED,
            TrackingStatus.PICKED_UP,
            TrackingStatus.IN_TRANSIT,
            TrackingStatus.IN_TRANSIT,
            TrackingStatus.OUT_FOR_DELIVERY,
            TrackingStatus.DELIVERED,
        ]
        assert not client.package_tracking(123).known


# EventCode's enum in Amazon's model
# (carriers/specs/amazon-mcf/fulfillmentOutbound_2020-07-01.json).
MODEL_EVENT_CODES = (
    "EVENT_101",
    "EVENT_102",
    "EVENT_201",
    "EVENT_202",
    "EVENT_203",
    "EVENT_204",
    "EVENT_205",
    "EVENT_206",
    "EVENT_301",
    "EVENT_302",
    "EVENT_304",
    "EVENT_306",
    "EVENT_307",
    "EVENT_308",
    "EVENT_309",
    "EVENT_401",
    "EVENT_402",
    "EVENT_403",
    "EVENT_404",
    "EVENT_405",
    "EVENT_406",
    "EVENT_407",
    "EVENT_408",
    "EVENT_409",
    "EVENT_411",
    "EVENT_412",
    "EVENT_413",
    "EVENT_414",
    "EVENT_415",
    "EVENT_416",
    "EVENT_417",
    "EVENT_418",
    "EVENT_419",
    "EVENT_801",
    "EVENT_804",
)


def test_every_amazon_event_code_of_the_model_is_mapped() -> None:
    assert set(MODEL_EVENT_CODES) == set(EVENTS)
    assert all(status is not TrackingStatus.UNKNOWN for status, _ in EVENTS.values())
