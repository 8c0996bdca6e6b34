"""AfterShip tracking webhooks: shops that already track their parcels with AfterShip point its
webhook at ``POST /v1/carriers/aftership/webhooks`` and every carrier it follows arrives here.

The payload is AfterShip's published one: ``{"event", "event_id", "is_tracking_first_tag",
"msg": <tracking>, "ts"}``, the tracking with its ``tag`` and ``subtag`` (delivery status and
sub-status) and its ``checkpoints``. Field names of the legacy (v4) and the dated webhook
versions are both read. The signature is AfterShip's: ``aftership-hmac-sha256`` is the base64
HMAC-SHA256 of the raw body with the webhook secret. AfterShip signs no timestamp in a header,
so the body's ``ts`` is held to AfterShip's retry window instead, and ``event_id`` identifies a
delivery (a replay carries the same one).

Only webhooks: AfterShip creates no shipments and this adapter does not poll it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from fulfill_carriers import options as opt
from fulfill_carriers.adapter import CreatedShipment, Nature, Parcel, Tracked, Webhook
from fulfill_carriers.aftership import mapping
from fulfill_carriers.errors import NotSupported, WebhookRefused

SIGNATURE_HEADER = "aftership-hmac-sha256"
# AfterShip retries a delivery that was not acknowledged, with its first ``ts``: a window that
# short would refuse its retries. Replays are refused by ``event_id`` instead.
RETRY_WINDOW_S = 3 * 24 * 3600


class AfterShip:
    """Options: ``webhook_secret`` (required), ``tolerance_s``."""

    code: ClassVar[str] = "aftership"
    label: ClassVar[str] = "our carrier"  # it reports for whichever carrier has the parcel
    nature: ClassVar[Nature] = Nature.AGGREGATOR
    batch_size = 0

    def __init__(self, webhook_secret: str, *, tolerance_s: int = RETRY_WINDOW_S) -> None:
        self.webhook_secret = webhook_secret
        self.tolerance_s = tolerance_s

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(
            opt.text(options, "webhook_secret", cls.code),
            tolerance_s=int(opt.number(options, "tolerance_s", cls.code, RETRY_WINDOW_S)),
        )

    def create_shipment(self, parcel: Parcel) -> CreatedShipment:
        raise NotSupported("AfterShip follows shipments; it does not create them")

    def track(self, tracking_numbers: Sequence[str]) -> list[Tracked]:
        raise NotSupported("AfterShip reports by webhook")

    def cancel(self, tracking_number: str) -> None:
        raise NotSupported("cancel with the carrier itself")

    def close(self) -> None:
        pass  # no client: it only reads what AfterShip sends

    def parse_webhook(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Webhook:
        self._verify(body, headers.get(SIGNATURE_HEADER))
        try:
            payload = json.loads(body)
            sent = float(payload["ts"])
            event_id = str(payload["event_id"])
            kind = str(payload["event"])
            tracking = payload["msg"]
            if not isinstance(tracking, dict):
                raise TypeError("msg is not a tracking object")
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRefused(f"not an AfterShip webhook: {exc}", 400) from exc
        current = time.time() if now is None else now
        if not math.isfinite(sent) or abs(current - sent) > self.tolerance_s:  # NaN is never near
            raise WebhookRefused(f"ts {sent:.0f} is outside the {self.tolerance_s}s tolerance", 401)
        if kind != "tracking_update":  # e.g. an estimate revised: nothing happened to the parcel
            return Webhook(f"aftership:{event_id}", ())
        try:
            events = tuple(mapping.events(tracking))
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRefused(f"an AfterShip tracking we cannot read: {exc}", 400) from exc
        return Webhook(f"aftership:{event_id}", events)

    def _verify(self, body: bytes, signature: str | None) -> None:
        if not self.webhook_secret:
            raise WebhookRefused("no AfterShip webhook secret is configured", 401)
        if not signature:
            raise WebhookRefused(f"missing {SIGNATURE_HEADER}", 401)
        digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(digest), signature.strip().encode()):
            raise WebhookRefused("signature does not match the body", 401)
