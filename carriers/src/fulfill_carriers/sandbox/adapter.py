"""The adapter for the sandbox carrier (``fulfill_carriers.sandbox.server``): the shape every
HTTP carrier adapter takes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import httpx

from fulfill_carriers import options as opt
from fulfill_carriers.adapter import CreatedShipment, Nature, Parcel, Tracked, Webhook, delivery_id
from fulfill_carriers.errors import (
    CarrierRefused,
    CarrierUnavailable,
    SignatureError,
    WebhookRefused,
)
from fulfill_carriers.http import retryable, send
from fulfill_carriers.sandbox import mapping
from fulfill_carriers.signatures import DEFAULT_TOLERANCE_S, verify

SIGNATURE_HEADER = "sandbox-signature"


class SandboxCarrier:
    """Options: ``url`` (required), ``webhook_secret``, ``timeout_s``, ``tolerance_s``."""

    code: ClassVar[str] = "sandbox"
    label: ClassVar[str] = "our carrier"  # it stands for the shop's own parcel carrier
    nature: ClassVar[Nature] = Nature.CARRIER
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

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(
            opt.text(options, "url", cls.code),
            webhook_secret=opt.text(options, "webhook_secret", cls.code, ""),
            timeout_s=opt.number(options, "timeout_s", cls.code, 5.0),
            tolerance_s=int(opt.number(options, "tolerance_s", cls.code, DEFAULT_TOLERANCE_S)),
        )

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
            tracking_number=mapping.text(answer, "tracking_number"),
            label_ref=answer.get("label_url"),
            eta=mapping.when(answer.get("eta")),
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
                events = tuple(mapping.event(e) for e in parcel.get("events") or [])
                number = mapping.text(parcel, "tracking_number")
                found.append(Tracked(number, events, mapping.when(parcel.get("eta"))))
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
            events = tuple(mapping.event(e) for e in payload["events"])
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
