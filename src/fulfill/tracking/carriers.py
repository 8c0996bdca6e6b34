"""The carriers this installation speaks to: the installed plugins (``fulfill_carriers``) that
its settings configure (``Settings.carrier_options``).

The own fleet is always there and needs no options: its events come from the drivers
(``POST /v1/driver-events``), never from polling or webhooks, so nothing builds its adapter.
"""

from __future__ import annotations

from fulfill.config import Settings
from fulfill_carriers import OWN_FLEET, Carrier, Nature, build, carrier_class, codes

__all__ = [
    "OWN_FLEET",
    "adapter",
    "aggregators",
    "check",
    "close",
    "configured",
    "creates_shipments",
]


def configured(settings: Settings) -> dict[str, Carrier]:
    """A fresh adapter per configured carrier (each holds its own HTTP client)."""
    return build(settings.carrier_options())


def adapter(settings: Settings, code: str) -> Carrier:
    """A fresh adapter of one configured carrier (``LookupError`` if it is not configured here:
    what was meant for it waits in the outbox until it is)."""
    options = settings.carrier_options()
    if code not in options:
        raise LookupError(f"carrier {code} is not configured here")
    return build({code: options[code]})[code]


def check(settings: Settings) -> None:
    """Every configured carrier can be built from its options (``PluginError`` names the one
    that cannot), so a wrong option stops the service at start, not a task at its first parcel."""
    close(configured(settings))


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
