"""Every error the carrier library raises, in one place: what a caller catches.

Three kinds tell the tracking service what to do: ``CarrierUnavailable`` (a timeout, a refused
connection, 429 or 5xx, an answer that is not what the API promises: may work later),
``CarrierRefused`` (the request itself was refused), ``WebhookRefused`` (a bad or stale
signature: answered 401, nothing stored). Amazon's errors carry Amazon's code as well.
"""

from __future__ import annotations


class CarrierError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CarrierUnavailable(CarrierError):
    """May work later: retry with backoff (and count it towards the circuit breaker)."""


class CarrierRefused(CarrierError):
    """The carrier refused the request as it is; retrying it unchanged will not help."""


class WebhookRefused(CarrierError):
    """The webhook's signature is missing, wrong or stale, or its body is not the carrier's."""


class NotSupported(CarrierError):
    """This carrier does not do that (e.g. the own fleet is never polled)."""


class PluginError(CarrierError):
    """A carrier plugin that cannot be used as installed or configured: the message says which
    and why, so the service refuses to start rather than lose parcels later."""


class McfError(CarrierError):
    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, status)
        self.code = code


class McfUnavailable(McfError, CarrierUnavailable):
    """The call may succeed later: retry with backoff."""


class McfRefused(McfError, CarrierRefused):
    """Amazon refused the request as it is; retrying it unchanged will not help."""


class SignatureError(ValueError):
    """The signature header is missing, malformed, stale or does not match."""
