"""The carriers this installation speaks to, from its settings.

``own_fleet`` is always there: its events come from the drivers (``POST /v1/driver-events``),
never from polling. The sandbox carrier stands for the shop's parcel carrier when
``FULFILL_CARRIER_URL`` is set; AfterShip's webhooks are accepted when their secret is; Amazon
MCF packages are polled when the third party is configured.
"""

from __future__ import annotations

from fulfill.config import Settings
from fulfill_carriers import own_fleet
from fulfill_carriers.adapter import Carrier
from fulfill_carriers.aftership import AfterShip
from fulfill_carriers.mcf import McfCarrier, McfClient
from fulfill_carriers.sandbox import SandboxCarrier

OWN_FLEET = own_fleet.CODE
PARCEL_CARRIER = "sandbox"


def configured(settings: Settings) -> dict[str, Carrier]:
    """A fresh adapter per configured carrier (each holds its own HTTP client)."""
    found: dict[str, Carrier] = {}
    if settings.carrier_url:
        found[PARCEL_CARRIER] = SandboxCarrier(
            settings.carrier_url,
            webhook_secret=settings.carrier_webhook_secret,
            timeout_s=settings.carrier_timeout_s,
            tolerance_s=settings.webhook_tolerance_s,
        )
    if settings.aftership_webhook_secret:
        found[AfterShip.code] = AfterShip(settings.aftership_webhook_secret)
    if settings.mcf_url:
        client = McfClient(
            settings.mcf_url,
            marketplace_id=settings.mcf_marketplace_id,
            token=settings.mcf_token,
            timeout_s=settings.mcf_timeout_s,
        )
        found[McfCarrier.code] = McfCarrier(client)
    return found


def close(carriers: dict[str, Carrier]) -> None:
    for carrier in carriers.values():
        carrier.close()
