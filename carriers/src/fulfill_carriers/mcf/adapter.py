"""Amazon MCF as a carrier for tracking: its packages are followed by package number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from fulfill_carriers import options as opt
from fulfill_carriers.adapter import CreatedShipment, Nature, Parcel, Tracked, Webhook
from fulfill_carriers.errors import NotSupported
from fulfill_carriers.mcf.client import McfClient


class McfCarrier:
    """The third party as a carrier for tracking: its packages are followed by package number
    (``tracking_ref``); orders are created and cancelled through ``McfClient`` itself."""

    code: ClassVar[str] = "amazon_mcf"
    label: ClassVar[str] = "Amazon"
    nature: ClassVar[Nature] = Nature.FULFILLER
    batch_size = 1  # getPackageTrackingDetails takes one package

    def __init__(self, client: McfClient) -> None:
        self.client = client

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Options: ``url`` (required), ``marketplace_id`` (required), ``token``, ``timeout_s``."""
        return cls(client_from_options(options))

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


def client_from_options(options: Mapping[str, Any]) -> McfClient:
    code = McfCarrier.code
    return McfClient(
        opt.text(options, "url", code),
        marketplace_id=opt.text(options, "marketplace_id", code),
        token=opt.text(options, "token", code, "") or None,
        timeout_s=opt.number(options, "timeout_s", code, 5.0),
    )
