"""AfterShip's tracking webhooks in their published shape: signature, tolerance, and mapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from fulfill_carriers import AfterShip, NotSupported, Parcel, WebhookRefused
from fulfill_carriers import ExceptionReason as R
from fulfill_carriers import TrackingStatus as S
from fulfill_carriers.aftership.adapter import SIGNATURE_HEADER
from fulfill_carriers.aftership.mapping import normalise

SECRET = "aftership-secret"


def checkpoint(at: str, tag: str, subtag: str, message: str) -> dict[str, Any]:
    return {
        "checkpoint_time": at,
        "created_at": at,
        "slug": "canada-post",
        "tag": tag,
        "subtag": subtag,
        "subtag_message": message,
        "message": message,
        "city": "Edmonton",
        "state": "AB",
        "country_iso3": "CAN",
        "location": None,
        "raw_tag": "FPX_L_RPIF",
    }


def webhook(**tracking: Any) -> dict[str, Any]:
    """A legacy (v4) tracking_update as AfterShip documents it."""
    msg = {
        "id": "grhrexm6t3hiwkjwq37jd003",
        "tracking_number": "7023210039414519",
        "slug": "canada-post",
        "tag": "InTransit",
        "subtag": "InTransit_001",
        "subtag_message": "In Transit",
        "expected_delivery": "2026-11-20",
        "checkpoints": [
            checkpoint(
                "2026-11-18T09:02:00-07:00",
                "InfoReceived",
                "InfoReceived_001",
                "Electronic information submitted by shipper",
            ),
            checkpoint(
                "2026-11-18T16:40:00-07:00",
                "InTransit",
                "InTransit_002",
                "Item accepted at the Post Office",
            ),
            checkpoint("2026-11-19T07:15:00-07:00", "InTransit", "InTransit_001", "Item processed"),
        ],
        **tracking,
    }
    return {
        "event": "tracking_update",
        "event_id": "3f645f5e-0a25-4f5b-8a85-6a4e9d2f0b1c",
        "is_tracking_first_tag": False,
        "msg": msg,
        "ts": int(time.time()),
    }


def signed(payload: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return body, {SIGNATURE_HEADER: base64.b64encode(digest).decode()}


def test_a_tracking_update_becomes_normalised_events_with_the_codes_kept() -> None:
    hook = AfterShip(SECRET).parse_webhook(*signed(webhook()))
    assert hook.delivery_id == "aftership:3f645f5e-0a25-4f5b-8a85-6a4e9d2f0b1c"
    assert [(e.status, e.raw_code) for e in hook.events] == [
        (S.INFO_RECEIVED, "InfoReceived_001"),
        (S.PICKED_UP, "InTransit_002"),
        (S.IN_TRANSIT, "InTransit_001"),
    ]
    first = hook.events[0]
    assert first.tracking_number == "7023210039414519"
    assert first.occurred_at == datetime(2026, 11, 18, 16, 2, tzinfo=UTC)
    assert first.location == "Edmonton, AB, CAN"
    assert first.eta == datetime(2026, 11, 20, 12, tzinfo=UTC)  # a date alone: its midday
    assert len({e.key for e in hook.events}) == 3


def test_the_dated_versions_fields_are_read_too() -> None:
    payload = webhook(
        expected_delivery=None,
        latest_estimated_delivery={"type": "specific", "datetime": "2026-11-21T15:00:00Z"},
    )
    payload["msg"]["checkpoints"][0]["country_region"] = "CAN"
    [first, *_] = AfterShip(SECRET).parse_webhook(*signed(payload)).events
    assert first.eta == datetime(2026, 11, 21, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tag", "subtag", "expected"),
    [
        ("OutForDelivery", "OutForDelivery_001", (S.OUT_FOR_DELIVERY, None)),
        ("AttemptFail", "AttemptFail_002", (S.ATTEMPT_FAILED, R.NOT_HOME)),
        ("AvailableForPickup", "AvailableForPickup_001", (S.AVAILABLE_FOR_PICKUP, None)),
        ("Delivered", "Delivered_003", (S.DELIVERED, None)),
        ("Exception", "Exception_003", (S.EXCEPTION, R.REFUSED)),
        ("Exception", "Exception_007", (S.EXCEPTION, R.ADDRESS)),
        ("Exception", "Exception_010", (S.RETURNING, None)),
        ("Exception", "Exception_011", (S.RETURNED, None)),
        ("Exception", "Exception_012", (S.EXCEPTION, R.DAMAGED)),
        ("Exception", "Exception_013", (S.EXCEPTION, R.LOST)),
        ("Exception", "Exception_017", (S.EXCEPTION, R.WEATHER)),
        ("Exception", "Exception_099", (S.EXCEPTION, R.OTHER)),  # a sub-status new to us
        ("Expired", "Expired_001", (S.EXPIRED, None)),
        ("Teleported", None, (S.UNKNOWN, None)),
    ],
)
def test_tags_and_sub_statuses_map_to_our_statuses_and_reasons(
    tag: str, subtag: str | None, expected: tuple[S, R | None]
) -> None:
    assert normalise(tag, subtag) == expected


def test_forged_stale_or_malformed_webhooks_are_refused() -> None:
    aftership = AfterShip(SECRET)
    body, headers = signed(webhook())
    with pytest.raises(WebhookRefused, match="does not match"):
        aftership.parse_webhook(
            body, {SIGNATURE_HEADER: signed(webhook(), "other")[1][SIGNATURE_HEADER]}
        )
    with pytest.raises(WebhookRefused, match="missing"):
        aftership.parse_webhook(body, {})
    aftership.parse_webhook(body, headers, now=time.time() + 3600)  # AfterShip's own retry
    with pytest.raises(WebhookRefused, match="tolerance"):
        aftership.parse_webhook(body, headers, now=time.time() + 4 * 24 * 3600)
    with pytest.raises(WebhookRefused, match="no AfterShip webhook secret"):
        AfterShip("").parse_webhook(*signed(webhook(), ""))
    with pytest.raises(WebhookRefused, match="does not match"):
        aftership.parse_webhook(body, {SIGNATURE_HEADER: "é" * 44})  # not even ASCII
    with pytest.raises(WebhookRefused, match="not an AfterShip webhook"):
        aftership.parse_webhook(*signed({"hello": "world"}))


def test_other_event_kinds_carry_no_tracking_event_and_nothing_else_is_supported() -> None:
    payload = webhook()
    payload["event"] = "edd_revise"
    assert AfterShip(SECRET).parse_webhook(*signed(payload)).events == ()
    with pytest.raises(NotSupported):
        AfterShip(SECRET).create_shipment(Parcel("r", "Ada", 53.5, -113.5, 1.0))
