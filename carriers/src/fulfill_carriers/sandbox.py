"""The adapter for the sandbox carrier (``fulfill_carriers.sandbox_server``): the shape every
HTTP carrier adapter takes. Its codes map to the normalised statuses below, the code kept."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from fulfill_carriers.adapter import (
    CarrierEvent,
    CarrierRefused,
    CarrierUnavailable,
    CreatedShipment,
    ExceptionReason,
    Parcel,
    Tracked,
    Webhook,
    WebhookRefused,
    delivery_id,
)
from fulfill_carriers.http import retryable, send
from fulfill_carriers.signatures import DEFAULT_TOLERANCE_S, SignatureError, verify
from fulfill_carriers.status import TrackingStatus as S

SIGNATURE_HEADER = "sandbox-signature"

STATUSES: dict[str, tuple[S, ExceptionReason | None]] = {
    "CR": (S.INFO_RECEIVED, None),
    "PU": (S.PICKED_UP, None),
    "AF": (S.IN_TRANSIT, None),
    "DF": (S.IN_TRANSIT, None),
    "OD": (S.OUT_FOR_DELIVERY, None),
    "DL": (S.DELIVERED, None),
    "NH": (S.ATTEMPT_FAILED, ExceptionReason.NOT_HOME),
    "HP": (S.AVAILABLE_FOR_PICKUP, None),
    "PK": (S.DELIVERED, None),
    "WX": (S.EXCEPTION, ExceptionReason.WEATHER),
    "DM": (S.EXCEPTION, ExceptionReason.DAMAGED),
    "AD": (S.EXCEPTION, ExceptionReason.ADDRESS),
    "RF": (S.EXCEPTION, ExceptionReason.REFUSED),
    "RS": (S.RETURNING, None),
    "RT": (S.RETURNED, None),
    "CX": (S.CANCELLED, None),
}


class SandboxCarrier:
    code = "sandbox"
    batch_size = 100

    def __init__(
        self,
        base_url: str,
        *,
        webhook_secret: str = "",
        timeout_s: float = 5.0,
        tolerance_s: int = DEFAULT_TOLERANCE_S,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.tolerance_s = tolerance_s
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def create_shipment(self, parcel: Parcel, *, scenario: str | None = None) -> CreatedShipment:
        body: dict[str, Any] = {
            "reference": parcel.reference,
            "recipient": {
                "name": parcel.name,
                "lat": parcel.lat,
                "lon": parcel.lon,
                "address": parcel.address,
                "phone": parcel.phone,
            },
            "weight_kg": parcel.weight_kg,
            "service": parcel.service,
        }
        if scenario:
            body["scenario"] = scenario
        answer = self._call("POST", "/v1/shipments", json=body)
        return CreatedShipment(
            tracking_number=_text(answer, "tracking_number"),
            label_ref=answer.get("label_url"),
            eta=_when(answer.get("eta")),
        )

    def track(self, tracking_numbers: Sequence[str]) -> list[Tracked]:
        found: list[Tracked] = []
        for start in range(0, len(tracking_numbers), self.batch_size):
            batch = tracking_numbers[start : start + self.batch_size]
            answer = self._call("GET", "/v1/tracking", params={"numbers": ",".join(batch)})
            parcels = answer.get("parcels")
            if not isinstance(parcels, list):
                raise CarrierUnavailable("tracking answer without a list of parcels")
            for parcel in parcels:
                events = tuple(_event(e) for e in parcel.get("events") or [])
                number = _text(parcel, "tracking_number")
                found.append(Tracked(number, events, _when(parcel.get("eta"))))
            found += [Tracked(str(n), known=False) for n in answer.get("unknown") or []]
        return found

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Webhook:
        signature = headers.get(SIGNATURE_HEADER)
        try:
            signed_at = verify(
                body, signature, self.webhook_secret, tolerance_s=self.tolerance_s, now=now
            )
        except SignatureError as exc:
            raise WebhookRefused(str(exc), 401) from exc
        try:
            payload = json.loads(body)
            events = tuple(_event(e) for e in payload["events"])
        except (ValueError, KeyError, TypeError, CarrierUnavailable) as exc:
            raise WebhookRefused(f"not a sandbox carrier webhook: {exc}", 400) from exc
        return Webhook(delivery_id(body, signed_at), events)

    def cancel(self, tracking_number: str) -> None:
        self._call("POST", f"/v1/shipments/{tracking_number}/cancel")

    def _call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        status, answer = send(
            self._http, method, path, CarrierUnavailable, json=json, params=params
        )
        if retryable(status):
            raise CarrierUnavailable(_said(method, path, status, answer), status)
        if status >= 400:
            raise CarrierRefused(_said(method, path, status, answer), status)
        return answer


def _said(method: str, path: str, status: int, answer: dict[str, Any]) -> str:
    error = answer.get("error") or {}
    return f"{method} {path}: {status} {error.get('code')}: {error.get('message')}"


def _event(e: dict[str, Any]) -> CarrierEvent:
    try:
        code = str(e["code"])
        status, reason = STATUSES.get(code, (S.UNKNOWN, None))
        at = _when(e["at"])
        if at is None:
            raise ValueError("an event without its time")
        return CarrierEvent(
            tracking_number=str(e["tracking_number"]),
            status=status,
            raw_code=code,
            occurred_at=at,
            description=str(e.get("description") or ""),
            location=e.get("location"),
            reason=reason,
            eta=_when(e.get("eta")),
            event_id=str(e["id"]) if e.get("id") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CarrierUnavailable(f"an event that is not the carrier's: {e!r:.200}") from exc


def _text(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise CarrierUnavailable(f"answer without {key}")
    return value


def _when(value: object) -> datetime | None:
    if not value:
        return None
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"{value} has no UTC offset")
    return at
