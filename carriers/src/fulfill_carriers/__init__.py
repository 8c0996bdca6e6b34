"""Carrier adapters, normalised tracking statuses and webhook signatures.

Everything a caller needs is here. Carriers are plugins: each is an adapter class carrying its
code, label and nature, registered under the ``fulfill.carriers`` entry point group (the
built-in ones too) and found by ``installed()``; ``build()`` makes the configured ones. Every
error is in ``fulfill_carriers.errors``. The sandboxes that stand for the outside APIs in tests and
the demo are ``fulfill_carriers.sandboxes``, kept out of the root so that a service does not load
them.
"""

from fulfill_carriers.adapter import (
    Carrier,
    CarrierEvent,
    CreatedShipment,
    ExceptionReason,
    Nature,
    Parcel,
    Tracked,
    Webhook,
)
from fulfill_carriers.aftership.adapter import AfterShip
from fulfill_carriers.errors import (
    CarrierError,
    CarrierRefused,
    CarrierUnavailable,
    McfError,
    McfRefused,
    McfUnavailable,
    NotSupported,
    PluginError,
    SignatureError,
    WebhookRefused,
)
from fulfill_carriers.http import retryable, send
from fulfill_carriers.mcf.adapter import McfCarrier, client_from_options
from fulfill_carriers.mcf.client import McfClient
from fulfill_carriers.mcf.mapping import (
    NOT_CANCELLABLE,
    Address,
    Item,
    NewOrder,
    OrderState,
    Package,
    Preview,
)
from fulfill_carriers.own_fleet.adapter import OwnFleet
from fulfill_carriers.own_fleet.mapping import CODE as OWN_FLEET
from fulfill_carriers.own_fleet.mapping import event as driver_event
from fulfill_carriers.plugins import CarrierClass, build, carrier_class, codes, installed, label
from fulfill_carriers.sandbox.adapter import SandboxCarrier
from fulfill_carriers.signatures import SIGNATURE_HEADER, sign, verify
from fulfill_carriers.status import TrackingStatus

__all__ = [
    "NOT_CANCELLABLE",
    "OWN_FLEET",
    "SIGNATURE_HEADER",
    "Address",
    "AfterShip",
    "Carrier",
    "CarrierClass",
    "CarrierError",
    "CarrierEvent",
    "CarrierRefused",
    "CarrierUnavailable",
    "CreatedShipment",
    "ExceptionReason",
    "Item",
    "McfCarrier",
    "McfClient",
    "McfError",
    "McfRefused",
    "McfUnavailable",
    "Nature",
    "NewOrder",
    "NotSupported",
    "OrderState",
    "OwnFleet",
    "Package",
    "Parcel",
    "PluginError",
    "Preview",
    "SandboxCarrier",
    "SignatureError",
    "Tracked",
    "TrackingStatus",
    "Webhook",
    "WebhookRefused",
    "build",
    "carrier_class",
    "client_from_options",
    "codes",
    "driver_event",
    "installed",
    "label",
    "retryable",
    "send",
    "sign",
    "verify",
]
