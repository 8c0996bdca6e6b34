"""The carriers this installation speaks to: the installed plugins (``fulfill_carriers``) that
its settings configure (``Settings.carrier_options``).

The own fleet is always there: its events come from the drivers (``POST /v1/driver-events``),
never from polling or webhooks, so it has no adapter to build.
"""

from __future__ import annotations

from fulfill.config import Settings
from fulfill_carriers import OWN_FLEET, Carrier, Nature, build, carrier_class, codes

__all__ = ["OWN_FLEET", "adapter", "aggregators", "close", "configured", "creates_shipments"]


def configured(settings: Settings) -> dict[str, Carrier]:
    """A fresh adapter per configured carrier (each holds its own HTTP client)."""
    return build(settings.carrier_options())


def adapter(settings: Settings, code: str) -> Carrier:
    """A fresh adapter of one configured carrier; ``KeyError`` if it is not configured."""
    options = settings.carrier_options()
    return build({code: options[code]})[code]


def creates_shipments(code: str) -> bool:
    """Whether we ask this carrier for shipments (and so tell it when one is cancelled)."""
    found = carrier_class(code)
    return found is not None and found.nature is Nature.CARRIER


def aggregators() -> frozenset[str]:
    """Carriers that report on parcels other carriers carry."""
    return codes(Nature.AGGREGATOR)


def close(carriers: dict[str, Carrier]) -> None:
    for carrier in carriers.values():
        carrier.close()
