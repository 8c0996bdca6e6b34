"""The sandboxes that stand for the outside APIs in tests, benches and the demo: the parcel
carrier, Amazon MCF and an SMS provider, each an ASGI app over its state. Their public face, as
the package root is the adapters'."""

from fulfill_carriers.mcf.sandbox import sandbox_app as mcf_sandbox_app
from fulfill_carriers.mcf.sandbox_state import SandboxState as McfSandboxState
from fulfill_carriers.sandbox.lives import CarrierState
from fulfill_carriers.sandbox.server import sandbox_app as carrier_sandbox_app
from fulfill_carriers.sms_sandbox import SmsState
from fulfill_carriers.sms_sandbox import sandbox_app as sms_sandbox_app

__all__ = [
    "CarrierState",
    "McfSandboxState",
    "SmsState",
    "carrier_sandbox_app",
    "mcf_sandbox_app",
    "sms_sandbox_app",
]
