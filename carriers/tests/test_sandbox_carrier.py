"""The sandbox carrier's adapter against its server, over real HTTP: lives, batches, trouble,
and signed webhooks."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from carrier_servers import served

from fulfill_carriers import (
    CarrierRefused,
    CarrierUnavailable,
    ExceptionReason,
    Parcel,
    SandboxCarrier,
    WebhookRefused,
    sign,
)
from fulfill_carriers.sandbox.adapter import SIGNATURE_HEADER
from fulfill_carriers.sandbox.lives import CODES, LIVES, parse_mix
from fulfill_carriers.sandbox.mapping import STATUSES
from fulfill_carriers.sandboxes import CarrierState
from fulfill_carriers.sandboxes import carrier_sandbox_app as sandbox_app
from fulfill_carriers.status import TrackingStatus as S

SECRET = "whsec_test"


def parcel(reference: str = "f-1") -> Parcel:
    return Parcel(reference, "Ada", 53.54, -113.49, 1.2)


@pytest.fixture
def carrier() -> Iterator[tuple[SandboxCarrier, CarrierState, str]]:
    state = CarrierState(seed=3)
    with served(sandbox_app(state)) as url:
        client = SandboxCarrier(url, webhook_secret=SECRET)
        yield client, state, url
        client.close()


def advance(url: str, hours: float) -> None:
    response = httpx.post(f"{url}/sandbox/clock", json={"advance_s": hours * 3600})
    assert response.status_code == 200


def test_every_code_of_the_carrier_has_a_normalised_status() -> None:
    assert set(STATUSES) == set(CODES)
    assert all(status is not S.UNKNOWN for status, _ in STATUSES.values())


def test_a_parcel_lives_its_life_on_the_clock_and_creating_it_twice_gives_one(
    carrier: tuple[SandboxCarrier, CarrierState, str],
) -> None:
    client, state, url = carrier
    created = client.create_shipment(parcel(), scenario="delivered")
    again = client.create_shipment(parcel())
    assert created.tracking_number == again.tracking_number and len(state.parcels) == 1
    assert created.label_ref and created.eta is not None
    [first] = client.track([created.tracking_number])
    assert [e.status for e in first.events] == [S.INFO_RECEIVED]
    advance(url, 60)
    [done] = client.track([created.tracking_number])
    assert [e.raw_code for e in done.events] == ["CR", "PU", "AF", "DF", "AF", "OD", "DL"]
    assert done.events[-1].status is S.DELIVERED
    assert len({e.key for e in done.events}) == len(done.events)  # distinct events, stable keys
    assert client.track([created.tracking_number])[0].events == done.events


@pytest.mark.parametrize(
    ("life", "last", "trouble"),
    [
        ("failed_attempt", S.DELIVERED, (S.ATTEMPT_FAILED, ExceptionReason.NOT_HOME)),
        ("pickup", S.DELIVERED, (S.AVAILABLE_FOR_PICKUP, None)),
        ("weather", S.DELIVERED, (S.EXCEPTION, ExceptionReason.WEATHER)),
        ("damaged", S.RETURNED, (S.EXCEPTION, ExceptionReason.DAMAGED)),
        ("address", S.RETURNED, (S.EXCEPTION, ExceptionReason.ADDRESS)),
        ("refused", S.RETURNED, (S.EXCEPTION, ExceptionReason.REFUSED)),
        ("lost", S.IN_TRANSIT, None),
    ],
)
def test_each_life_ends_where_it_should_with_its_trouble_normalised(
    carrier: tuple[SandboxCarrier, CarrierState, str],
    life: str,
    last: S,
    trouble: tuple[S, ExceptionReason | None] | None,
) -> None:
    client, _, url = carrier
    number = client.create_shipment(parcel(life), scenario=life).tracking_number
    advance(url, 100)
    [tracked] = client.track([number])
    assert len(tracked.events) == len(LIVES[life])
    assert tracked.events[-1].status is last
    if trouble is not None:
        assert trouble in [(e.status, e.reason) for e in tracked.events]
    if life == "weather":  # the carrier moves its estimate when it knows it is late
        assert tracked.eta is not None and tracked.eta > tracked.events[0].occurred_at


def test_batches_of_a_hundred_and_unknown_numbers(
    carrier: tuple[SandboxCarrier, CarrierState, str],
) -> None:
    client, state, _ = carrier
    numbers = [client.create_shipment(parcel(f"b-{k}")).tracking_number for k in range(130)]
    tracked = client.track([*numbers, "SBX-NOPE"])
    assert {t.tracking_number for t in tracked if t.known} == set(numbers)
    assert [t.tracking_number for t in tracked if not t.known] == ["SBX-NOPE"]
    assert state.calls["/v1/tracking"] == 2


def test_a_shipment_is_cancelled_only_before_pickup(
    carrier: tuple[SandboxCarrier, CarrierState, str],
) -> None:
    client, _, url = carrier
    early = client.create_shipment(parcel("c-1")).tracking_number
    client.cancel(early)
    client.cancel(early)  # a retried cancel is fine
    assert client.track([early])[0].events[-1].status is S.CANCELLED
    late = client.create_shipment(parcel("c-2")).tracking_number
    advance(url, 2)
    with pytest.raises(CarrierRefused, match="already on its way"):
        client.cancel(late)


@pytest.mark.parametrize(
    "trouble", [{"down": True}, {"garbage": True}, {"rate_per_s": 1}, {"delay_s": 2}]
)
def test_a_carrier_in_trouble_is_unavailable_never_a_wrong_answer(
    carrier: tuple[SandboxCarrier, CarrierState, str], trouble: dict[str, object]
) -> None:
    client, _, url = carrier
    number = client.create_shipment(parcel()).tracking_number
    httpx.post(f"{url}/sandbox/trouble", json=trouble)
    slow = SandboxCarrier(url, timeout_s=0.5)
    with pytest.raises(CarrierUnavailable):
        for _ in range(3):  # the rate limit lets the first call of the second through
            slow.track([number])
    slow.close()


def test_the_webhook_reports_each_event_once_signed_and_refuses_forgeries() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    sink = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    state = CarrierState(
        webhook_url=f"http://127.0.0.1:{sink.server_address[1]}/hook",
        webhook_secret=SECRET,
        speed=3600 * 50,
    )
    try:
        with served(sandbox_app(state)) as url:
            client = SandboxCarrier(url, webhook_secret=SECRET)
            client.create_shipment(parcel("w-1"), scenario="delivered")
            deadline = time.monotonic() + 60
            while sum(len(json.loads(b)["events"]) for b, _ in received) < 7:
                assert time.monotonic() < deadline, received
                time.sleep(0.05)
    finally:
        sink.shutdown()
    events = [e for body, headers in received for e in client.parse_webhook(body, headers).events]
    assert [e.raw_code for e in events] == ["CR", "PU", "AF", "DF", "AF", "OD", "DL"]
    body, headers = received[0]
    assert client.parse_webhook(body, headers).delivery_id == (
        client.parse_webhook(body, dict(headers)).delivery_id  # a replay is recognisable
    )
    with pytest.raises(WebhookRefused, match="does not match"):
        client.parse_webhook(body.replace(b"CR", b"DL"), headers)
    stale = {SIGNATURE_HEADER: sign(body, SECRET, timestamp=int(time.time()) - 3600)}
    with pytest.raises(WebhookRefused, match="tolerance"):
        client.parse_webhook(body, stale)
    with pytest.raises(WebhookRefused, match="missing"):
        client.parse_webhook(body, {})
    forged = b'{"events": [{"nonsense": 1}]}'
    with pytest.raises(WebhookRefused, match="not a sandbox carrier webhook"):
        client.parse_webhook(forged, {SIGNATURE_HEADER: sign(forged, SECRET)})


def test_the_mix_of_lives_is_chosen_on_the_command_line() -> None:
    assert parse_mix("delivered=3,lost=1") == {"delivered": 3.0, "lost": 1.0}
    for bad in ("teleported=1", "delivered=x", "delivered=0", "lost=-1,delivered=2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_mix(bad)
    state = CarrierState(mix={"lost": 1.0})
    assert state.create("r-1", None, "Town").life == "lost"
